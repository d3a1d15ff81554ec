"""Secrets never reach the report or its summary; the summary is inert Markdown."""

from __future__ import annotations

import pytest

from pytest_reliability.cli import main
from tests.plugin._helpers import REPORT, RunInner, by_nodeid

TOKEN = "ghp_S3cr3tT0kenValue0123456789"
LEAKY = """
import os, pytest

def test_leaks_the_token():
    token = os.environ["DEPLOY_API_TOKEN"]
    assert token == "other", f"deploy failed with token {token} for acct-12345"

def test_leaks_in_a_parameter_id():
    pytest.fail("see <img src=x onerror=alert(1)> and [click](https://evil.example) **now**")
"""


def test_secret_environment_values_and_patterns_are_masked_everywhere(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DEPLOY_API_TOKEN", TOKEN)
    pytester.makepyfile(LEAKY)
    result, report = run_inner(
        "--reliability-redact=acct-[0-9]+", "-p", "rerunfailures", "--reruns=1"
    )
    raw = (pytester.path / REPORT).read_text(encoding="utf-8")
    assert TOKEN not in raw
    assert "acct-12345" not in raw
    failure = by_nodeid(report)["test_leaks_the_token"]["failure"]
    assert "token *** for ***" in failure
    # The plugin's own terminal lines (gate reasons) are masked too; pytest's traceback is
    # pytest's business.
    gate_lines = result.outlines[
        result.outlines.index(
            next(line for line in result.outlines if "reliability gates failed" in line)
        ) :
    ]
    assert not [line for line in gate_lines if TOKEN in line and line.startswith("  - ")]
    # One failure text per attempt, plus the test's own (the 1.0 contract), plus the crash
    # location's message (1.2): no other copies.
    assert raw.count("deploy failed with token") == 4

    # The summary masks what the environment it runs in considers secret, and escapes.
    capsys.readouterr()
    assert main(["report", "summary", str(pytester.path / REPORT)]) == 0
    markdown = capsys.readouterr().out
    assert TOKEN not in markdown
    assert "<img" not in markdown
    assert "[click](" not in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "\\[click\\](https\\://evil.example) \\*\\*now\\*\\*" in markdown


def test_summary_masks_a_report_written_elsewhere(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makepyfile("def test_x():\n    assert False, 'password hunter2-horse for db'\n")
    run_inner()
    capsys.readouterr()
    monkeypatch.setenv("DB_PASSWORD", "hunter2-horse")
    path = str(pytester.path / REPORT)
    assert main(["report", "summary", "--format", "text", path]) == 0
    assert "hunter2-horse" not in capsys.readouterr().out
    monkeypatch.delenv("DB_PASSWORD")
    assert main(["report", "summary", "--format", "text", "--redact", "hunter\\S+", path]) == 0
    assert "password *** for db" in capsys.readouterr().out
    assert main(["report", "summary", "--redact", "(", path]) == 1
    assert "--redact" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DATABASE_URL", True),
        ("PGPASSWORD", True),
        ("DB_PASSWORD", True),
        ("STRIPE_API_KEY", True),
        ("SENTRY_DSN", True),
        ("PWD", False),
        ("HOME", False),
        ("KEYBOARD_LAYOUT", False),
    ],
)
def test_which_environment_names_look_secret(name: str, masked: bool) -> None:
    from pytest_reliability.report._mask import secret_values

    assert bool(secret_values({name: "value-long-enough"})) is masked


def test_short_values_are_not_masked() -> None:
    from pytest_reliability.report._mask import Masker, secret_values

    # "true" or "1" would mask unrelated text all over the report.
    assert secret_values({"USE_AUTH": "true", "API_TOKEN": "12345"}) == []
    masker = Masker.from_environ({"API_TOKEN": "123456"})
    assert masker.text("id 123456 and 1234567") == "id *** and ***7"


def test_a_bad_redact_pattern_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "reliability", "--reliability-redact=(")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--reliability-redact" in result.stderr.str()
