"""Loading the plugin: -p reliability with and without autoload, -p no:reliability, import cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.plugin._helpers import REPORT, RunInner, load_report

OPTIONS = (
    "--reliability-report",
    "--reliability-seed",
    "--reliability-require",
    "--reliability-flaky-budget",
    "--reliability-deterministic-ids",
    "--reliability-deterministic-uuid4",
)
INI = (
    "reliability_report",
    "reliability_seed",
    "reliability_require",
    "reliability_flaky_budget",
    "reliability_deterministic_ids",
    "reliability_deterministic_uuid4",
)


def test_help_has_a_reliability_group_with_every_option_and_ini_twin(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("-p", "reliability", "--help")
    assert result.ret == 0
    out = result.stdout.str()
    group = out.index("reliability report, seed and gates:")
    for option in OPTIONS:
        assert out.index(option) > group, option
    for ini in INI:
        assert f"  {ini} " in out, ini


def test_plugin_loads_with_autoload_disabled_and_writes_the_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result, report = run_inner()
    assert result.ret == 0
    assert report["summary"]["passed"] == 1
    result.stdout.fnmatch_lines(["reliability: seed=* deterministic-ids=off report=*"])


def test_autoload_loads_the_entry_point_and_no_reliability_turns_it_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    pytester.makepyfile("def test_one():\n    pass\n")
    on = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "reliability")
    assert on.ret == 0
    assert (pytester.path / REPORT).is_file()
    (pytester.path / REPORT).unlink()
    off = pytester.runpytest("-p", "no:reliability", "-p", "no:benchmark")
    assert off.ret == 0
    assert not (pytester.path / REPORT).exists()
    unknown = pytester.runpytest("-p", "no:reliability", "--reliability-seed=1")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR


AUTOLOADED = """
import pytest

@pytest.mark.chaos
def test_fixtures_and_markers_are_there(correlation_ids, chaos):
    assert correlation_ids()
"""


def test_autoloaded_plugin_offers_fixtures_and_markers_but_writes_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.delenv("RELIABILITY_REPORT", raising=False)
    pytester.makepyfile(AUTOLOADED)
    # A file where the report directory would go: no longer a usage error, nothing is written.
    (pytester.path / "reports").write_text("not a directory")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "--strict-markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["reliability: seed=* report=off"])
    assert (pytester.path / "reports").read_text() == "not a directory"
    assert not any(pytester.path.rglob("*.json"))


@pytest.mark.parametrize(
    ("how", "where"),
    [
        ("option", "custom.json"),
        ("ini", "from-ini.json"),
        ("env-path", "from-env.json"),
        ("env-true", REPORT),
        ("addopts", REPORT),
        ("pytest-addopts", REPORT),
    ],
)
def test_each_way_of_opting_in_writes_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, where: str
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.delenv("RELIABILITY_REPORT", raising=False)
    pytester.makepyfile("def test_one():\n    pass\n")
    args = ["-p", "no:cacheprovider", "-p", "no:benchmark"]
    if how == "option":
        args.append("--reliability-report=custom.json")
    elif how == "ini":
        pytester.makeini("[pytest]\nreliability_report = from-ini.json\n")
    elif how == "env-path":
        monkeypatch.setenv("RELIABILITY_REPORT", "from-env.json")
    elif how == "env-true":
        monkeypatch.setenv("RELIABILITY_REPORT", "true")
    elif how == "addopts":
        pytester.makeini("[pytest]\naddopts = -p reliability\n")
    else:
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p reliability")
    result = pytester.runpytest(*args)
    assert result.ret == 0
    assert load_report(pytester.path / where)["summary"]["passed"] == 1


def test_reliability_report_false_does_not_opt_in(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("RELIABILITY_REPORT", "off")
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark")
    assert result.ret == 0
    assert not any(pytester.path.rglob("*.json"))


def test_loading_the_plugin_imports_no_sqlalchemy_hypothesis_docker_or_jsonschema(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    script = textwrap.dedent(
        """
        import os, sys
        import pytest
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        code = pytest.main(["-q", "-p", "reliability", "-p", "no:cacheprovider", "test_plain.py"])
        names = ("sqlalchemy", "hypothesis", "docker", "jsonschema")
        heavy = sorted(m for m in names if m in sys.modules)
        print("HEAVY:", ",".join(heavy) or "none", "CODE:", int(code))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "HEAVY: none CODE: 0" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["--collect-only", "--fixtures", "--fixtures-per-test"])
def test_listing_modes_write_no_report_and_run_no_gate(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile("def test_one(correlation_ids):\n    pass\n")
    result = pytester.runpytest("-p", "reliability", "--reliability-require=chaos", mode)
    assert result.ret == 0
    assert not (pytester.path / REPORT).exists()
