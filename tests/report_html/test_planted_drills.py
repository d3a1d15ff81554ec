"""Drills run against a planted fault: counted as failed as planted, or as a failure when missed.

A drill declares ``expected="failed"`` when it is run on purpose against a planted fault (a
changed manifest, a handler that acknowledges early, a fail-open policy). Its failure is what it
was meant to find; its passing means it missed the fault. A drill that declares nothing and
fails is a failure as before. The sections, the summary, the page and the metrics agree.

Nothing here records a drill in this process: a planted drill that passes would reach the
report of the run these tests are part of, as the failure it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_reliability.chaos_infra import DrillResult as OutageDrill
from pytest_reliability.chaos_infra import chaos_drills_section
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.ops.restore_drill import DrillResult as RestoreDrill
from pytest_reliability.ops.restore_drill import backups_section
from pytest_reliability.report import (
    metrics_text,
    render_html,
    summary_markdown,
    summary_text,
    validate_report,
)
from tests.report_html._reports import make_report, make_test


def _restore(name: str, *, ok: bool, expected: Any = "passed") -> RestoreDrill:
    problems = () if ok else (f"table orders of {name} has 10 rows; the manifest says 11",)
    return RestoreDrill(
        backup=Path(f"{name}.dump"),
        backend="sqlite",
        ok=ok,
        problems=problems,
        rto_s=0.5,
        restore_s=0.25,
        tables_checked=3,
        rows_checked=30,
        audit_events_verified=4,
        finished_at="2026-11-30T10:00:00Z",
        expected=expected,
    )


def _outage(module: str, *violations: str, expected: Any = "passed") -> OutageDrill:
    return OutageDrill(
        module, "redis", "pause", 0.4, 0.1, 1.0, 30.0, 12, violations, expected=expected
    )


def _report(backups: Any = None, chaos: Any = None) -> dict[str, Any]:
    report = make_report([make_test("t.py::test_ok")])
    if backups is not None:
        report["backups"] = backups
    if chaos is not None:
        report["chaos_drills"] = chaos
    validate_report(report)
    return report


def _restore_drills() -> list[dict[str, Any]]:
    """A drill that passed, one caught its planted fault, one missed it, one failed unplanted."""
    return [
        _restore("clean", ok=True).to_json(),
        _restore("planted", ok=False, expected="failed").to_json(),
        _restore("missed", ok=True, expected="failed").to_json(),
        _restore("broken", ok=False).to_json(),
    ]


def test_only_a_planted_drill_carries_its_expected_outcome_in_its_json() -> None:
    clean, planted, missed, broken = _restore_drills()
    assert "expected" not in clean
    assert "expected" not in broken
    assert planted["expected"] == missed["expected"] == "failed"
    assert (planted["status"], missed["status"]) == ("failed", "passed")
    outage = _outage("abuse", "fail-open", expected="failed").to_json()
    assert (outage["status"], outage["expected"]) == ("failed", "failed")
    assert "expected" not in _outage("abuse").to_json()


def test_an_expected_outcome_other_than_passed_or_failed_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="expected outcome"):
        _outage("abuse", expected="skipped")
    with pytest.raises(ConfigurationError, match="expected outcome"):
        _outage("abuse", expected=True)


def test_the_backups_section_counts_planted_failures_apart_and_a_missed_plant_as_failed() -> None:
    section = backups_section(_restore_drills())
    assert section is not None
    assert (section["passed"], section["failed"], section["expected_failures"]) == (1, 2, 1)
    _report(backups=section)  # schema-valid, the new fields included
    # Without a planted drill the section is as it always was.
    plain = backups_section(_restore_drills()[::3])
    assert plain == {"drills": _restore_drills()[::3], "passed": 1, "failed": 1}


def test_the_chaos_drills_section_leaves_out_the_violations_of_a_drill_failed_as_planted() -> None:
    drills = [
        _outage("kill_switch"),
        _outage("abuse", "fail-open", "let through: 3", expected="failed"),
        _outage("idempotency", "duplicated effects: 1 (k)"),
    ]
    section = chaos_drills_section(drills)
    assert (section["passed"], section["failed"], section["expected_failures"]) == (1, 1, 1)
    assert section["violations"] == 1
    missed = chaos_drills_section([_outage("abuse", expected="failed")])
    assert (missed["passed"], missed["failed"], missed["expected_failures"]) == (0, 1, 0)
    _report(chaos=section)
    assert "expected_failures" not in chaos_drills_section(drills[::2])


def test_the_summary_says_failed_as_planted_and_names_a_missed_plant_first() -> None:
    report = _report(backups=backups_section(_restore_drills()))
    line = (
        "restore drills: 1 passed, 2 failed (1 planted fault not caught), 1 failed as planted "
        "(first failure missed.dump: planted fault not caught)"
    )
    assert f"\n{line}\n" in summary_text(report)
    assert "- restore drills: 1 passed, 2 failed (1 planted fault not caught), 1 failed as " in (
        summary_markdown(report)
    )


def test_a_run_whose_only_failures_were_planted_reads_as_no_failure() -> None:
    backups = backups_section(_restore_drills()[:2])
    chaos = chaos_drills_section([_outage("audit"), _outage("abuse", "x", expected="failed")])
    text = summary_text(_report(backups=backups, chaos=chaos))
    assert "\nrestore drills: 1 passed, 0 failed, 1 failed as planted\n" in text
    assert "\noutage drills: 1 passed, 0 failed, 1 failed as planted, 0 violations\n" in text
    assert "first failure" not in text


def test_an_unplanted_failure_is_still_a_failure_in_the_summary() -> None:
    backups = backups_section([_restore("broken", ok=False).to_json()])
    chaos = chaos_drills_section([_outage("idempotency", "duplicated effects: 1 (k)")])
    text = summary_text(_report(backups=backups, chaos=chaos))
    assert (
        "restore drills: 0 passed, 1 failed (first failure broken.dump: table orders of "
        "broken has 10 rows; the manifest says 11)"
    ) in text
    assert (
        "outage drills: 0 passed, 1 failed, 1 violations (first failure idempotency on redis "
        "pause: duplicated effects: 1 (k))"
    ) in text
    assert "planted" not in text


def test_a_section_counted_the_old_way_is_told_from_its_drills() -> None:
    # A merged section, or one written before drills declared an expected outcome, counts
    # every failed drill as failed; the summary, page and metrics count from the drills.
    drills = _restore_drills()[:2]
    report = _report(backups={"drills": drills, "passed": 1, "failed": 1})
    assert "restore drills: 1 passed, 0 failed, 1 failed as planted\n" in summary_text(report)
    assert "Restore drills: 1 passed, 0 failed, 1 failed as planted" in render_html([report])


def test_the_page_marks_planted_and_missed_drills() -> None:
    chaos = chaos_drills_section(
        [_outage("abuse", "fail-open", expected="failed"), _outage("audit", expected="failed")]
    )
    page = render_html([_report(backups=backups_section(_restore_drills()), chaos=chaos)])
    counts = "1 failed (1 planted fault not caught), 1 failed as planted"
    assert "Restore drills: 1 passed, 2 failed (1 planted fault not caught), 1 failed as" in page
    assert f"Outage drills: 0 passed, {counts}, 0 violations" in page
    caught = '<span class="o o-xfailed"><span aria-hidden="true">x</span> failed as planted'
    assert page.count(caught) == 2
    assert page.count("✗</span> planted fault not caught") == 2


def _restore_samples(report: dict[str, Any]) -> dict[str, float]:
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics_text(report))
        if family.name == "reliability_restore_drills"
        for sample in family.samples
    }


def test_the_metrics_count_planted_failures_apart() -> None:
    report = _report(backups=backups_section(_restore_drills()))
    assert _restore_samples(report) == {"passed": 1, "failed": 2, "expected_failure": 1}
    plain = _report(backups=backups_section(_restore_drills()[::3]))
    assert _restore_samples(plain) == {"passed": 1, "failed": 1}


def test_merged_shards_count_their_drills_as_one_run_does() -> None:
    from pytest_reliability.report import merge_reports

    restore = _restore_drills()
    outage = [
        _outage("kill_switch").to_json(),
        _outage("abuse", "fail-open", "let through: 3", expected="failed").to_json(),
        _outage("idempotency", "duplicated effects: 1 (k)").to_json(),
    ]
    first = _report(backups=backups_section(restore[:2]), chaos=chaos_drills_section(outage[:2]))
    second = make_report([make_test("u.py::test_ok")])
    second["run"]["id"] = "another-shard"
    second["backups"] = backups_section(restore[2:])
    second["chaos_drills"] = chaos_drills_section(outage[2:])
    merged = merge_reports([first, second])
    validate_report(merged)
    whole_backups = backups_section(restore)
    whole_chaos = chaos_drills_section(outage)
    assert whole_backups is not None
    for key in ("passed", "failed", "expected_failures"):
        assert merged["backups"][key] == whole_backups[key], key
    for key in ("passed", "failed", "expected_failures", "violations"):
        assert merged["chaos_drills"][key] == whole_chaos[key], key
