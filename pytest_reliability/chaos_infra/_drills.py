"""Outage-drill results: one per module, store and fault, kept for the report's ``chaos_drills``.

A drill (``harness/chaos_drills.py`` runs them) faults a store, times how long a module takes to
fail closed and, once the fault is undone, to serve again, and checks the history of every
request made meanwhile. :func:`record_drill` keeps each result in this process, the plugin
gathers them (and the xdist workers') into the report, and :func:`chaos_drills_section` builds
the section. This module imports nothing heavy: the plugin only looks for it in ``sys.modules``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, final

from pytest_reliability._drill_outcome import check_expected, drill_counts, unplanted_violations
from pytest_reliability.errors import ConfigurationError

__all__ = ["DrillResult", "chaos_drills_section", "record_drill", "recorded_drills"]

_MAX_SECONDS = 31_536_000_000  # the report schema's bound on seconds (a thousand years)
_MAX_COUNT = 2**63 - 1  # and on counts
_recorded: list[DrillResult] = []
_lock = threading.Lock()


def _seconds(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"drill {name} must be seconds or None, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= _MAX_SECONDS:
        raise ConfigurationError(
            f"drill {name} must be finite, >= 0 and <= {_MAX_SECONDS}, not {value!r}"
        )
    return round(float(value), 6)


@final
@dataclass(frozen=True, slots=True)
class DrillResult:
    """What one drill measured. ``violations`` empty means it passed.

    ``time_to_fail_closed_s`` is the time from the fault to the module's first fail-closed
    answer, ``time_to_recover_s`` from undoing the fault to its first healthy answer; ``None``
    when it never came within the drill's wait. ``histories_checked`` counts the requests whose
    history (effects, acknowledgements, audit events) was checked after recovery.

    ``expected`` is the outcome the caller declared: ``"failed"`` for a drill run against a
    planted bug (a handler that acknowledges early, a fail-open policy) to prove the drill
    catches it. The report then counts its failure as expected and its passing as a failure.
    """

    module: str
    store: str
    fault: str
    time_to_fail_closed_s: float | None
    time_to_recover_s: float | None
    fail_closed_bound_s: float
    recover_bound_s: float
    histories_checked: int = 0
    violations: tuple[str, ...] = ()
    finished_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z")
    )
    expected: Literal["passed", "failed"] = "passed"

    def __post_init__(self) -> None:
        for name in ("module", "store", "fault"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigurationError(f"a drill needs a {name}")
        for name in ("time_to_fail_closed_s", "time_to_recover_s"):
            object.__setattr__(self, name, _seconds(getattr(self, name), name))
        for name in ("fail_closed_bound_s", "recover_bound_s"):
            bound = _seconds(getattr(self, name), name)
            if bound is None:
                raise ConfigurationError(f"a drill needs {name}")
            object.__setattr__(self, name, bound)
        checked = self.histories_checked
        if (
            isinstance(checked, bool)
            or not isinstance(checked, int)
            or not 0 <= checked <= _MAX_COUNT
        ):
            raise ConfigurationError(f"histories_checked must be a count, not {checked!r}")
        object.__setattr__(self, "violations", tuple(str(v) for v in self.violations))
        object.__setattr__(self, "expected", check_expected(self.expected))

    @property
    def passed(self) -> bool:
        """True when the drill found no violation."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """Return the drill as the report's ``chaos_drills.drills`` item."""
        return {
            "module": self.module,
            "store": self.store,
            "fault": self.fault,
            "status": "passed" if self.passed else "failed",
            "time_to_fail_closed_s": self.time_to_fail_closed_s,
            "time_to_recover_s": self.time_to_recover_s,
            "fail_closed_bound_s": self.fail_closed_bound_s,
            "recover_bound_s": self.recover_bound_s,
            "histories_checked": self.histories_checked,
            "violations": list(self.violations),
            "finished_at": self.finished_at,
            # Only a planted drill says so: the objects of ordinary drills stay as they were.
            **({"expected": self.expected} if self.expected != "passed" else {}),
        }


def record_drill(result: DrillResult) -> None:
    """Keep ``result`` for this process's report (see :func:`recorded_drills`).

    A drill run against a planted bug is recorded with ``DrillResult(..., expected="failed")``:
    the report then counts it as failed as planted, not as a failure.
    """
    if not isinstance(result, DrillResult):
        raise ConfigurationError(f"record_drill takes a DrillResult, not {type(result).__name__}")
    with _lock:
        _recorded.append(result)


def recorded_drills() -> tuple[DrillResult, ...]:
    """Every drill this process recorded, oldest first."""
    with _lock:
        return tuple(_recorded)


def chaos_drills_section(drills: Iterable[DrillResult | Mapping[str, Any]]) -> dict[str, Any]:
    """Return the report's ``chaos_drills`` section for ``drills`` (results or their JSON).

    ``passed`` counts the drills expected to pass that passed, ``failed`` every unexpected
    outcome (a failure, or a planted bug not caught); ``violations`` counts the violations
    found by drills not expected to fail (a planted drill's are what it was meant to find).
    When any drill declared an expected outcome, ``expected_failures`` counts the planted drills
    that failed as planted.
    """
    items = [d.to_json() if isinstance(d, DrillResult) else dict(d) for d in drills]
    counts = drill_counts(items)
    section: dict[str, Any] = {
        "drills": items,
        "passed": counts.passed,
        "failed": counts.failed,
        "violations": unplanted_violations(items),
    }
    if counts.planted:
        section["expected_failures"] = counts.expected_failures
    return section
