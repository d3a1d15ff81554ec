"""How a drill's outcome is judged against the outcome its caller expected.

Some drills are run on purpose against a planted fault (a corrupted dump, a handler that
acknowledges early, a fail-open policy) to prove the drill catches it. Such a drill carries
``"expected": "failed"`` in its JSON (``run_drill(..., expected="failed")``,
``DrillResult(..., expected="failed")``); a drill without the field is expected to pass.

Every drill falls in one of four outcomes:

* ``passed``: expected to pass, and passed;
* ``failed``: expected to pass, and failed (a real failure);
* ``failed as planted``: expected to fail, and failed (the drill caught its planted fault);
* ``planted fault not caught``: expected to fail, and passed: the drill missed the fault it was
  given, a real failure too.

:func:`drill_counts` counts them for the report's ``backups`` and ``chaos_drills`` sections and
for the pages and summaries drawn from them. It reads only the items, so a section merged or
written by an older producer is counted the same way. Nothing heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, final

from pytest_reliability.errors import ConfigurationError

EXPECTED: Final = ("passed", "failed")
"""The values a drill's ``expected`` may take (absent means ``"passed"``)."""
PLANTED: Final = "failed as planted"
"""The outcome of a drill expected to fail that failed."""
MISSED: Final = "planted fault not caught"
"""The outcome of a drill expected to fail that passed."""

Outcome = Literal["passed", "failed", "failed as planted", "planted fault not caught"]


def drill_outcome(drill: Mapping[str, Any]) -> Outcome:
    """Return the outcome of one drill's JSON object, its ``expected`` field taken into account."""
    passed = drill.get("status") == "passed"
    if drill.get("expected") == "failed":
        return MISSED if passed else PLANTED
    return "passed" if passed else "failed"


@final
@dataclass(frozen=True, slots=True)
class DrillCounts:
    """Drills by outcome. ``failed`` counts every unexpected outcome, ``missed`` included."""

    passed: int
    failed: int
    expected_failures: int
    missed: int
    planted: bool
    """True when any drill declared an expected outcome (the section then says how many)."""

    def text(self) -> str:
        """Return "P passed, F failed[ (M planted fault not caught)][, E failed as planted]"."""
        text = f"{self.passed} passed, {self.failed} failed"
        if self.missed:
            text += f" ({self.missed} {MISSED})"
        if self.expected_failures:
            text += f", {self.expected_failures} {PLANTED}"
        return text


def drill_counts(drills: Iterable[Mapping[str, Any]]) -> DrillCounts:
    """Count ``drills`` (JSON objects) by :func:`drill_outcome`."""
    passed = failed = expected = missed = 0
    planted = False
    for drill in drills:
        planted = planted or "expected" in drill
        outcome = drill_outcome(drill)
        if outcome == "passed":
            passed += 1
        elif outcome == PLANTED:
            expected += 1
        else:
            failed += 1
            missed += outcome == MISSED
    return DrillCounts(passed, failed, expected, missed, planted)


def unexpected(drills: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the drills whose outcome is a failure: failed unplanned, or a planted fault missed."""
    return [d for d in drills if drill_outcome(d) in ("failed", MISSED)]


def check_expected(value: object) -> Literal["passed", "failed"]:
    """Return ``value`` when it is ``"passed"`` or ``"failed"``; else a ConfigurationError."""
    if value == "passed":
        return "passed"
    if value == "failed":
        return "failed"
    raise ConfigurationError(f"a drill's expected outcome is 'passed' or 'failed', not {value!r}")


def unplanted_violations(drills: Iterable[Mapping[str, Any]]) -> int:
    """Count the outage drills' violations, but those of drills that failed as planted."""
    return sum(len(d.get("violations") or ()) for d in drills if drill_outcome(d) != PLANTED)
