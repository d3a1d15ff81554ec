"""Merging the reports of sharded CI runs into one report over every shard's tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_reliability._drill_outcome import drill_counts, unplanted_violations
from pytest_reliability.errors import ReportError
from pytest_reliability.report._build import overall_status
from pytest_reliability.report._collector import CLOSING, summarize
from pytest_reliability.report._gates import GateResult, builtin_gates, run_gate
from pytest_reliability.report._schema import SCHEMA_VERSION

MAX_WARNINGS = 1000
"""Most warnings a merged report keeps (as one run's report)."""

_SEVERITY = {"passed": 0, "failed": 1, "error": 2}


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _merged_hook_gates(reports: Sequence[Mapping[str, Any]]) -> list[GateResult]:
    by_name: dict[str, GateResult] = {}
    for report in reports:
        for gate in report["gates"]:
            if gate["source"] != "hook":
                continue
            seen = by_name.get(gate["name"])
            reasons = tuple(gate["reasons"])
            status = gate["status"]
            if seen is not None:
                reasons = seen.reasons + reasons
                status = max(seen.status, status, key=_SEVERITY.__getitem__)
            by_name[gate["name"]] = GateResult(
                gate["name"], status, reasons, "hook", gate.get("description", "")
            )
    return list(by_name.values())


def _closing(reports: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Sum the shards' closing-line counts (each shard's pytest said them)."""
    total: dict[str, int] = {}
    for report in reports:
        summary = report["summary"]
        for name in CLOSING:
            total[name] = total.get(name, 0) + int(summary[name])
        for name, count in summary.get("other", {}).items():
            total[name] = total.get(name, 0) + int(count)
    return total


def _drill_section(drills: list[Any], *, violations: int | None = None) -> dict[str, Any]:
    """Return a drills section counted as one run counts it (planted drills apart)."""
    counts = drill_counts(drills)
    section: dict[str, Any] = {"drills": drills, "passed": counts.passed, "failed": counts.failed}
    if violations is not None:
        section["violations"] = violations
    if counts.planted:
        section["expected_failures"] = counts.expected_failures
    return section


def merge_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Return one report holding the tests of every shard report, with the gates re-run.

    The built-in gates run again over all tests, so a required category proven by any shard
    counts; hook gates keep each shard's verdict (the worst one per name). A test present in
    several shards keeps its last entry. Every shard's seed is kept (``run.seeds``), and every
    shard's restore drills (``backups``) and outage drills (``chaos_drills``); a run given twice
    (directly or inside a merged report) is a ReportError.
    """
    if not reports:
        raise ReportError("nothing to merge: give at least one report")
    seen: dict[str, int] = {}
    for index, report in enumerate(reports):
        run_ids = [report["run"]["id"], *report["run"].get("merged_from", ())]
        for run_id in run_ids:
            if run_id in seen:
                raise ReportError(
                    f"report {index + 1} repeats run {run_id} of report {seen[run_id] + 1}: "
                    "each run can be merged once"
                )
            seen[run_id] = index
    tests: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    drills: list[Any] = []
    outage: list[Any] = []
    required: list[str] = []
    for report in reports:
        for test in report["tests"]:
            tests[test["nodeid"]] = test
        for error in report["collection_errors"]:
            errors.setdefault(error["nodeid"], error)
        sections.update(report.get("sections", {}))
        drills.extend(report.get("backups", {}).get("drills", ()))
        outage.extend(report.get("chaos_drills", {}).get("drills", ()))
        for category in report["run"]["required_categories"]:
            if category not in required:
                required.append(category)
    runs = [r["run"] for r in reports]
    first = runs[0]
    projects = sorted({str(r["project"]) for r in runs if r.get("project")})
    if len(projects) > 1:
        raise ReportError(
            f"the reports come from different projects ({', '.join(projects)}): "
            "only shards of one project's run merge"
        )
    started = min(_parse_time(r["started_at"]) for r in runs)
    finished = max(_parse_time(r["finished_at"]) for r in runs)
    budget = min(int(r["flaky_budget"]) for r in runs)
    interruption = next((r["interruption"] for r in runs if r["interruption"]), None)
    test_list = [tests[k] for k in sorted(tests)]
    error_list = [errors[k] for k in sorted(errors)]
    allow_no_tests = all(bool(r.get("allow_no_tests", False)) for r in runs)
    view: dict[str, Any] = {
        "tests": test_list,
        "collection_errors": error_list,
        "summary": summarize(test_list, len(error_list), _closing(reports)),
    }
    gates = [run_gate(g, view, "builtin") for g in builtin_gates(required, budget, allow_no_tests)]
    gates.extend(_merged_hook_gates(reports))
    # A shard's exit code also carries its own gates' verdict, which the merge re-decides; only
    # an interrupted shard's code (2, 3, pytest.exit's) survives as it is.
    interrupted = [int(r["exit_code"]) for r in runs if r["interruption"]]
    if interrupted:
        exit_code = next((c for c in interrupted if c), 1)
    elif any(g.status != "passed" for g in gates):
        exit_code = 1
    else:
        exit_code = 0 if test_list else 5
    run = {
        **first,
        "id": str(uuid.uuid4()),
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "duration_s": round((finished - started).total_seconds(), 6),
        "complete": all(r["complete"] for r in runs),
        "interruption": interruption,
        "exit_code": exit_code,
        "workers": sorted({w for r in runs for w in r["workers"]}),
        "required_categories": required,
        "flaky_budget": budget,
        "merged_from": [r["id"] for r in runs],
        "seeds": [int(r["seed"]) for r in runs],
        "allow_no_tests": allow_no_tests,
    }
    merged = {
        "schema_version": SCHEMA_VERSION,
        "status": overall_status(exit_code, interruption, gates, view["summary"]),
        "run": run,
        "summary": view["summary"],
        "tests": test_list,
        "collection_errors": error_list,
        "gates": [g.as_dict() for g in gates],
        "sections": sections,
    }
    warnings = [w for r in reports for w in r.get("warnings", ())]
    if warnings:  # schema 1.2: every shard's warnings, bounded as one run's are
        merged["warnings"] = warnings[:MAX_WARNINGS]
    if drills:  # every shard's restore drills, oldest first
        drills.sort(key=lambda d: (str(d.get("finished_at", "")), str(d["backup"])))
        merged["backups"] = _drill_section(drills)
    if outage:  # every shard's outage drills, oldest first
        outage.sort(key=lambda d: (str(d.get("finished_at", "")), str(d["module"])))
        merged["chaos_drills"] = _drill_section(outage, violations=unplanted_violations(outage))
    return merged
