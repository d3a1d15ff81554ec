"""``pytest-reliability slo evaluate|rules`` and ``report slo``, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_reliability.cli import main
from pytest_reliability.ops.slo_engine import load_sloth_spec, sloth_rules

DATA = Path(__file__).parent / "data"
SPEC = DATA / "getting-started.yml"
T0 = 1_780_000_000


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_reliability", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """The same command line in this process (cheaper than a subprocess on a busy machine)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _csv(path: Path, bad_last_hour: int, *, header: str = "timestamp,bad,total") -> Path:
    lines = [header]
    for i in range(7 * 1440):  # a week of one-minute buckets, 1000 requests each
        t = T0 - i * 60
        lines.append(f"{t},{bad_last_hour if i < 60 else 0},1000")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_evaluate_passes_a_healthy_slo(tmp_path: Path) -> None:
    result = _cli("slo", "evaluate", SPEC, "--data", _csv(tmp_path / "d.csv", 0))
    assert result.returncode == 0, result.stderr
    assert "SLO requests-availability: objective 99.9%" in result.stdout
    assert "gate: passed" in result.stdout


def test_evaluate_fails_the_gate_when_a_page_alert_fires(tmp_path: Path) -> None:
    data = _csv(tmp_path / "d.csv", 20)  # 2 % errors for an hour: 20x the budget rate
    result = _cli("slo", "evaluate", SPEC, "--data", data, "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["failed"] == ["requests-availability"]
    (slo,) = document["slos"]
    firing = {a["name"] for a in slo["alerts"] if a["firing"]}
    assert firing == {"page-quick"}  # the 6 h window has not burnt 6x yet (20 x 1/6 = 3.3)
    assert slo["budget"]["consumed_events"] == 20 * 60


def test_evaluate_reads_counters_and_an_explicit_instant(tmp_path: Path) -> None:
    data = tmp_path / "c.csv"
    rows = ["timestamp,good,total"] + [
        f"2026-06-01T00:{m:02d}:00Z,{m * 990},{m * 1000}" for m in range(0, 60)
    ]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = _cli(
        "slo", "evaluate", SPEC, "--data", data, "--counters", "--at", "2026-06-01T00:59:00Z"
    )
    # 1 % errors burn at 10x: under the 14.4x page, over the 6x page and the tickets.
    assert result.returncode == 1
    assert "page-quick: ok" in result.stdout
    assert "page-slow: FIRING" in result.stdout
    assert "ticket-quick: FIRING" in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("timestamp,total\n1,2\n", "needs timestamp, total and one of good or bad"),
        ("timestamp,bad,total\n1,5,2\n", "greater than total"),
        ("timestamp,bad,total\n1,x,2\n", "line 2: bad 'x' is not a number"),
        ("timestamp,bad,total\n2026-01-01T00:00:00,1,2\n", "no time zone"),
    ],
)
def test_evaluate_refuses_bad_data_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    data = tmp_path / "d.csv"
    data.write_text(content, encoding="utf-8")
    code, out, err = _main(capsys, "slo", "evaluate", SPEC, "--data", data)
    assert code == 1
    assert not out
    assert words in err


def test_evaluate_names_the_line_of_a_malformed_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yml"
    spec.write_text(SPEC.read_text().replace("objective: 99.9", "objective: 0"), encoding="utf-8")
    result = _cli("slo", "evaluate", spec, "--data", _csv(tmp_path / "d.csv", 0))
    assert result.returncode == 1
    assert "line 14: slos[0].objective:" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_prints_what_sloth_generates() -> None:
    result = _cli("slo", "rules", SPEC)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == sloth_rules(load_sloth_spec(SPEC.read_text()))


SUITE = """
import pytest

@pytest.mark.chaos
def test_chaos_a():
    assert {ok}

@pytest.mark.chaos
def test_chaos_b():
    pass

@pytest.mark.idempotency
def test_idem():
    pass

@pytest.mark.skip(reason="not run, not counted")
def test_skipped():
    pass
"""


def _history(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, outcomes: list[bool]
) -> list[Path]:
    """Real reports from real runs of a small suite, one per entry (False: chaos_a fails)."""
    # Inner runs load only the reliability plugin and no setting of the outer run.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("RELIABILITY_SEED", "DETERMINISTIC_TEST_IDS", "CHAOS_ENABLED", "CI"):
        monkeypatch.delenv(name, raising=False)
    paths = []
    for i, ok in enumerate(outcomes):
        pytester.makepyfile(test_suite=SUITE.format(ok=ok))
        pytester.runpytest("-p", "reliability", "-p", "no:cacheprovider")
        path = pytester.path / f"run{i}.json"
        (pytester.path / "reports/reliability-validation-report.json").rename(path)
        paths.append(path)
    return paths


def test_report_slo_treats_a_history_of_reports_as_an_sli(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports = _history(pytester, monkeypatch, [True, True, False])
    result = _cli("report", "slo", *reports, "--objective", "99", "--format", "json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    by_name = {s["slo"]: s for s in document["slos"]}
    assert set(by_name) == {"tests:all", "tests:chaos", "tests:idempotency"}
    assert by_name["tests:all"]["events"] == {"good": 8, "bad": 1, "total": 9}  # skip not run
    assert by_name["tests:chaos"]["events"] == {"good": 5, "bad": 1, "total": 6}
    assert by_name["tests:idempotency"]["budget"]["consumed_events"] == 0
    assert document["failed"] == ["tests:all", "tests:chaos"]

    capsys.readouterr()
    code, out, err = _main(capsys, "report", "slo", *reports[:2], "--category", "chaos")
    assert code == 0, out + err
    assert "SLO tests:chaos" in out
    assert "gate: passed" in out

    code, _, err = _main(capsys, "report", "slo", *reports, "--category", "billing")
    assert code == 1
    assert "no test in these reports" in err
