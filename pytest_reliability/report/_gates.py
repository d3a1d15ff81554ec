"""Reliability gates: checks over a finished report that decide the run's verdict.

A gate is a name and a function from the report to the reasons it fails (none means it passed).
A gate that raises is recorded with status ``error`` and fails the run: a check that could not
decide does not let a build through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, final

GateCheck = Callable[[Mapping[str, Any]], Iterable[str]]
"""A gate's check: takes the report, returns the reasons it fails (empty when it passes)."""
GateStatus = Literal["passed", "failed", "error"]


@final
@dataclass(frozen=True, slots=True)
class Gate:
    """A named check over the report (return these from ``pytest_reliability_gates``)."""

    name: str
    check: GateCheck
    description: str = ""


@final
@dataclass(frozen=True, slots=True)
class GateResult:
    """The verdict of one gate."""

    name: str
    status: GateStatus
    reasons: tuple[str, ...]
    source: Literal["builtin", "hook"]
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the report's entry for this result."""
        entry: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "reasons": list(self.reasons),
            "source": self.source,
        }
        if self.description:
            entry["description"] = self.description
        return entry


_SHOWN = 10


def _no_failures(report: Mapping[str, Any]) -> Iterable[str]:
    # The failure texts stay on the tests (once per attempt), not copied into the reasons.
    bad = [t for t in report["tests"] if t["outcome"] in ("failed", "error")]
    for test in bad[:_SHOWN]:
        yield f"{test['nodeid']} {test['outcome']}"
    if len(bad) > _SHOWN:
        yield f"... and {len(bad) - _SHOWN} more failed or errored tests"
    for error in report["collection_errors"][:_SHOWN]:
        yield f"collection error in {error['nodeid'] or '<session>'}"


def required_categories_gate(required: Sequence[str]) -> Gate:
    """Return the gate that needs at least one passing test in each of ``required``."""

    def check(report: Mapping[str, Any]) -> Iterable[str]:
        proven = {
            category
            for test in report["tests"]
            if test["outcome"] in ("passed", "flaky", "xpassed")
            for category in test["categories"]
        }
        for category in required:
            if category not in proven:
                yield f"no passing test in required category {category!r}"

    return Gate("required-categories", check, "each required category has a passing test")


def flaky_budget_gate(budget: int) -> Gate:
    """Return the gate that allows at most ``budget`` flaky tests."""

    def check(report: Mapping[str, Any]) -> Iterable[str]:
        flaky = [t["nodeid"] for t in report["tests"] if t["outcome"] == "flaky"]
        if len(flaky) > budget:
            names = ", ".join(flaky[:_SHOWN])
            yield f"{len(flaky)} flaky tests exceed the budget of {budget}: {names}"

    return Gate("flaky-budget", check, f"at most {budget} flaky tests")


def _tests_ran(report: Mapping[str, Any]) -> Iterable[str]:
    summary = report["summary"]
    if not report["tests"] and not summary["collection_errors"]:
        yield "no tests ran (allow it with --reliability-allow-no-tests)"


def builtin_gates(
    required: Sequence[str], flaky_budget: int, allow_no_tests: bool = False
) -> list[Gate]:
    """Return the built-in gates for a run's configuration."""
    gates = [
        Gate("no-failures", _no_failures, "no failed or errored test, no collection error"),
        required_categories_gate(required),
        flaky_budget_gate(flaky_budget),
    ]
    if not allow_no_tests:
        gates.append(Gate("tests-ran", _tests_ran, "at least one test ran"))
    return gates


def run_gate(
    gate: Gate, report: Mapping[str, Any], source: Literal["builtin", "hook"]
) -> GateResult:
    """Evaluate one gate; an exception becomes status ``error`` with its text as the reason."""
    try:
        reasons = tuple(str(r) for r in gate.check(report))
    except Exception as exc:  # a broken gate must fail the run, not crash the report
        return GateResult(
            gate.name, "error", (f"{type(exc).__name__}: {exc}",), source, gate.description
        )
    status: GateStatus = "failed" if reasons else "passed"
    return GateResult(gate.name, status, reasons, source, gate.description)
