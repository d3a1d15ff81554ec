"""Schema-valid reports built in memory, for the HTML, trend, metrics and annotation tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_reliability.report import validate_report

_GOOD = ("passed", "flaky", "xpassed")


def make_test(
    nodeid: str,
    outcome: str = "passed",
    duration: float = 0.01,
    categories: Sequence[str] = (),
    failure: str | None = None,
    facts: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return one report test entry (schema 1.2)."""
    if failure is None and outcome in ("failed", "error"):
        failure = f"AssertionError: {nodeid} broke"
    attempts = [
        {
            "outcome": "passed" if outcome != "failed" else "failed",
            "duration_s": duration,
            "failure": failure,
        }
    ]
    if outcome == "flaky":
        attempts = [
            {"outcome": "failed", "duration_s": duration / 2, "failure": "first try failed"},
            {"outcome": "passed", "duration_s": duration / 2, "failure": None},
        ]
        failure = "first try failed"
    elif outcome not in ("passed", "failed"):
        attempts[0]["outcome"] = outcome
    path = nodeid.split("::", 1)[0]
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "duration_s": duration,
        "categories": sorted(categories),
        "worker": None,
        "attempts": attempts,
        "failure": failure,
        "facts": facts or {},
        "location": {"path": path, "line": 3},
        **extra,
    }


def make_report(
    tests: Iterable[dict[str, Any]],
    *,
    run_id: str = "run-1",
    started_at: str = "2026-11-01T10:00:00Z",
    project: str | None = "billing",
    duration: float = 12.5,
    required: Sequence[str] = (),
    gates: Sequence[dict[str, Any]] | None = None,
    seed: int = 1234,
) -> dict[str, Any]:
    """Return a schema-valid 1.2 report over ``tests``."""
    tests = sorted(tests, key=lambda t: t["nodeid"])
    counts = dict.fromkeys(("passed", "failed", "skipped", "xfailed", "xpassed", "error"), 0)
    flaky = 0
    for test in tests:
        if test["outcome"] == "flaky":
            flaky += 1
            counts["passed"] += 1
        else:
            counts[test["outcome"]] += 1
    bad = counts["failed"] + counts["error"]
    if gates is None:
        gates = [
            {
                "name": "no-failures",
                "status": "failed" if bad else "passed",
                "reasons": [
                    f"{t['nodeid']} {t['outcome']}"
                    for t in tests
                    if t["outcome"] in ("failed", "error")
                ],
                "source": "builtin",
            }
        ]
    run: dict[str, Any] = {
        "id": run_id,
        "started_at": started_at,
        "finished_at": started_at,
        "duration_s": duration,
        "seed": seed,
        "deterministic_ids": True,
        "deterministic_uuid4": False,
        "complete": True,
        "interruption": None,
        "exit_code": 1 if bad else 0,
        "workers": [],
        "versions": {"python": "3.11.7", "pytest": "9.0.3", "plugin": "0.1.0", "xdist": None},
        "platform": {
            "system": "Linux",
            "release": "6",
            "machine": "x86_64",
            "implementation": "cpython",
        },
        "ci": {"provider": None, "commit": None, "branch": None, "url": None},
        "required_categories": list(required),
        "flaky_budget": 0,
        "allow_no_tests": False,
    }
    if project is not None:
        run["project"] = project
    report = {
        "schema_version": "1.2",
        "status": "failed" if any(g["status"] != "passed" for g in gates) else "passed",
        "run": run,
        "summary": {
            "total": len(tests),
            **counts,
            "flaky": flaky,
            "interrupted": 0,
            "collection_errors": 0,
            "other": {},
            "collected": len(tests),
            "deselected": 0,
        },
        "tests": tests,
        "collection_errors": [],
        "gates": list(gates),
        "sections": {},
    }
    validate_report(report)
    return report


def write(path: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``path`` as JSON; return the path."""
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def rich_report(**options: Any) -> dict[str, Any]:
    """A report with every part the page shows: failures, flaky tests, facts, hostile names."""
    tests = [
        make_test(
            "tests/test_pay.py::test_charge",
            duration=1.5,
            categories=["chaos"],
            facts={
                "chaos": {
                    "faults": [
                        {"target": "db", "kind": "latency", "trigger": "always", "fired": 3},
                        {"target": "api", "kind": "exception", "trigger": "once", "fired": 1},
                    ],
                    "injected": 2,
                    "fired": 4,
                },
                "audit": {"events_by_action": {"billing.charge": 5, "ops.switch": 2}},
            },
        ),
        make_test(
            "tests/test_pay.py::test_refund",
            "failed",
            0.2,
            ["idempotency"],
            failure="<b>bold</b> & <img src=x onerror=alert(2)>",
            crash={"path": "pay/refund.py", "line": 41, "message": "AssertionError: refund"},
        ),
        make_test("tests/test_pay.py::test_retry", "flaky", 0.4, ["idempotency"]),
        make_test(
            "tests/test_pay.py::test_named[<script>alert(1)</script>]",
            facts={"kill_switches": {"exercised": ["BILLING"], "engaged": 1}},
            categories=["kill_switch"],
            properties=[{"name": "ticket", "value": "OPS-1"}],
            metadata={"owner": "payments"},
        ),
        make_test(
            "tests/test_pay.py::test_idem",
            categories=["idempotency"],
            facts={"idempotency": {"examples": 50, "duplicates_suppressed": 12}},
        ),
        make_test("tests/test_pay.py::test_later", "skipped", 0.001),
    ]
    return make_report(tests, required=["chaos", "kill_switch", "audit"], **options)
