"""report metrics (parsed back by prometheus-client), report annotations, report trend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pytest_reliability.cli import main
from pytest_reliability.report import annotations_text, build_trend, metrics_text
from tests.report_html._reports import make_report, make_test, rich_report, write


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_back_with_prometheus_client_and_hold_the_figures() -> None:
    report = rich_report()
    text = metrics_text(report)
    samples = _samples(text)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["reliability_tests"] == "gauge"
    assert families["reliability_test_duration_seconds"] == "histogram"
    assert samples[("reliability_tests", (("outcome", "failed"),))] == 1
    assert samples[("reliability_tests", (("outcome", "flaky"),))] == 1
    assert samples[("reliability_tests", (("outcome", "error"),))] == 0
    assert samples[("reliability_run_status", (("status", "failed"),))] == 1
    assert samples[("reliability_run_status", (("status", "passed"),))] == 0
    assert samples[("reliability_run_duration_seconds", ())] == 12.5
    assert samples[("reliability_tests_collected", ())] == 6
    info = next(k for k in samples if k[0] == "reliability_report_info")
    assert dict(info[1]) == {
        "project": "billing",
        "status": "failed",
        "schema_version": "1.2",
        "plugin_version": "0.1.0",
        "seed": "1234",
    }
    assert (
        samples[("reliability_gate_passed", (("gate", "no-failures"), ("source", "builtin")))] == 0
    )
    assert samples[("reliability_chaos_faults_fired", (("kind", "latency"),))] == 3
    assert samples[("reliability_chaos_faults_injected", (("kind", "exception"),))] == 1
    assert samples[("reliability_kill_switch_exercised_tests", (("switch", "BILLING"),))] == 1
    assert samples[("reliability_idempotency", (("measure", "duplicates_suppressed"),))] == 12
    assert samples[("reliability_audit_events", (("action", "billing.charge"),))] == 5
    audit = (("category", "audit"), ("required", "true"))
    assert samples[("reliability_category_passing_tests", audit)] == 0
    # The histogram: cumulative buckets, the count is every test, the sum every duration.
    assert samples[("reliability_test_duration_seconds_bucket", (("le", "+Inf"),))] == 6
    assert samples[("reliability_test_duration_seconds_bucket", (("le", "0.01"),))] == 3
    assert samples[("reliability_test_duration_seconds_count", ())] == 6
    assert samples[("reliability_test_duration_seconds_sum", ())] == pytest.approx(2.121)
    # No test names as label values (cardinality).
    assert "test_refund" not in text


def test_metrics_cli_writes_a_textfile_atomically(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path / "r.json", rich_report())
    out = tmp_path / "textfile" / "reliability.prom"
    out.parent.mkdir()
    assert main(["report", "metrics", str(path), "-o", str(out)]) == 0
    assert _samples(out.read_text())[("reliability_run_exit_code", ())] == 1
    assert main(["report", "metrics", str(path)]) == 0
    assert "# TYPE reliability_tests gauge" in capsys.readouterr().out


def test_hostile_label_values_stay_inside_their_quotes() -> None:
    gate = {"name": 'x"} evil{a="1', "status": "failed", "reasons": ["r"], "source": "hook"}
    report = make_report([make_test("t.py::a")], gates=[gate])
    samples = _samples(metrics_text(report))
    assert samples[("reliability_gate_passed", (("gate", gate["name"]), ("source", "hook")))] == 0


def test_github_annotations_place_failures_and_escape_their_text() -> None:
    report = rich_report()
    refund_test = next(t for t in report["tests"] if t["nodeid"].endswith("test_refund"))
    refund_test["failure"] = "line one\nline two, 100% ::error::forged"
    lines = annotations_text(report, "github").splitlines()
    refund = next(line for line in lines if "test_refund" in line)
    assert refund.startswith("::error file=pay/refund.py,line=41,title=failed%3A tests/test_pay.py")
    assert refund.endswith("::line one%0Aline two, 100%25 ::error::forged")
    assert len(lines) == 3  # failed test, flaky test (warning), failed gate
    flaky = next(line for line in lines if "test_retry" in line)
    assert flaky.startswith("::warning file=tests/test_pay.py,line=3,")
    gate = next(line for line in lines if "gate" in line)
    assert gate.startswith("::error title=reliability gate no-failures failed::")


def test_gitlab_code_quality_report(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path / "r.json", rich_report())
    assert main(["report", "annotations", str(path), "--format", "gitlab"]) == 0
    issues = json.loads(capsys.readouterr().out)
    assert {i["check_name"] for i in issues} == {
        "reliability-test-failed",
        "reliability-test-flaky",
        "reliability-gate-no-failures",
    }
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["location"]["lines"]["begin"] >= 1
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
    failed = next(i for i in issues if i["check_name"] == "reliability-test-failed")
    assert failed["location"] == {"path": "pay/refund.py", "lines": {"begin": 41}}
    gate = next(i for i in issues if i["check_name"].startswith("reliability-gate"))
    assert gate["location"]["path"] == "pyproject.toml"
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    # Stable across runs: the same problems give the same fingerprints.
    assert main(["report", "annotations", str(path), "--format", "gitlab"]) == 0
    assert json.loads(capsys.readouterr().out) == issues


def test_a_passing_report_has_no_annotations() -> None:
    report = make_report([make_test("t.py::a"), make_test("t.py::b", "skipped")])
    assert annotations_text(report, "github") == ""
    assert json.loads(annotations_text(report, "gitlab")) == []


def _history(tmp_path: Path) -> list[Path]:
    runs = [
        [make_test("t.py::a"), make_test("t.py::b", categories=["chaos"])],
        [make_test("t.py::a", "failed"), make_test("t.py::b", "flaky", categories=["chaos"])],
        [make_test("t.py::a"), make_test("t.py::b", "failed", categories=["chaos"])],
    ]
    paths = []
    for day, tests in enumerate(runs, 1):
        report = make_report(tests, run_id=f"run-{day}", started_at=f"2026-11-0{day}T00:00:00Z")
        paths.append(write(tmp_path / f"r{day}.json", report))
    return paths


def test_trend_text_and_json_reuse_the_diff(tmp_path: Path, capsys: Any) -> None:
    paths = _history(tmp_path)
    assert main(["report", "trend", *map(str, reversed(paths)), "--format", "json"]) == 0
    trend = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in trend["runs"]] == ["run-1", "run-2", "run-3"]
    assert [r["pass_rate"] for r in trend["runs"]] == [1.0, 0.5, 0.5]
    assert trend["runs"][1]["newly_failing"] == ["t.py::a"]
    assert trend["runs"][1]["newly_flaky"] == ["t.py::b"]
    assert trend["runs"][2]["fixed"] == ["t.py::a"]
    assert trend["runs"][2]["newly_failing"] == ["t.py::b"]
    assert trend["runs"][2]["categories"] == {"chaos": {"passing": 0, "tests": 1}}
    assert trend["warnings"] == []
    assert main(["report", "trend", *map(str, paths)]) == 0
    text = capsys.readouterr().out
    assert "newly failing: 1" in text
    assert "chaos: 1/1 1/1 0/1" in text
    out = tmp_path / "trend.html"
    assert main(["report", "trend", *map(str, paths), "--format", "html", "-o", str(out)]) == 0
    assert "Trend across 3 runs" in out.read_text()


def test_trend_of_different_projects_is_refused_unless_allowed(tmp_path: Path, capsys: Any) -> None:
    one = write(tmp_path / "a.json", make_report([make_test("a.py::x")], project="billing"))
    two = write(
        tmp_path / "b.json",
        make_report(
            [make_test("b.py::y")], run_id="r2", project="search", started_at="2026-12-01T00:00:00Z"
        ),
    )
    assert main(["report", "trend", str(one), str(two)]) == 1
    err = capsys.readouterr().err
    assert "different projects (billing, search)" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["report", "trend", str(one), str(two), "--allow-mixed"]) == 0
    assert "WARNING: these reports come from different projects" in capsys.readouterr().out


def test_trend_of_reports_before_1_2_works_without_project_names() -> None:
    old = make_report([make_test("t.py::a")], project=None)
    old["schema_version"] = "1.1"
    new = make_report(
        [make_test("t.py::a", "failed")],
        run_id="r2",
        project=None,
        started_at="2026-12-01T00:00:00Z",
    )
    trend = build_trend([old, new])
    assert trend.projects == ()
    assert trend.points[1].newly_failing == ("t.py::a",)


def _undo(text: str) -> str:
    return (
        text.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


@settings(max_examples=80, deadline=None)
@given(
    name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    failure=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60),
)
def test_any_failure_text_stays_one_github_command(name: str, failure: str) -> None:
    report = make_report([make_test(f"t.py::{name}", "failed", failure=failure)])
    # The runner reads its commands line by line, split at LF (CR LF too).
    lines = annotations_text(report, "github").removesuffix("\n").split("\n")
    # One command for the test, one for the gate: no text broke a line or forged a command.
    assert len(lines) == 2
    assert not any("\r" in line for line in lines)
    test_line = lines[0]
    assert test_line.startswith("::error file=t.py,line=3,title=")
    properties, message = test_line[len("::error ") :].split("::", 1)
    assert _undo(message) == failure
    assert _undo(properties.split(",title=", 1)[1]) == f"failed: t.py::{name}"
    samples = _samples(metrics_text(report))
    assert samples[("reliability_tests", (("outcome", "failed"),))] == 1
