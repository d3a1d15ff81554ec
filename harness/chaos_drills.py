"""Outage drills: SKELETON. Fault a containerised store, time fail-closed and recovery.

This is the harness's frame only. It runs a drill (fault a PostgreSQL or Redis container, wait
until the module under drill answers "fail closed", undo the fault, wait until it is healthy
again) and builds the report's ``chaos_drills`` section from the results. The per-module drills
(readiness, health, idempotency under traffic from several processes, kill switches, audit, the
history check) are added once the hardened stores are merged; today :func:`store_drills` only
drills the stores' own wire probes, which proves the timing and cleanup machinery.

    python -m harness.chaos_drills             # run the store drills, print the section as JSON
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_reliability.chaos_infra import ContainerPool, ManagedContainer
from pytest_reliability.chaos_infra._probes import PROBES
from pytest_reliability.errors import DockerUnavailable

Check = Callable[[ManagedContainer], bool]
_FAULTS: dict[str, tuple[str, str]] = {
    # fault -> (apply, undo) method names on ManagedContainer
    "pause": ("pause", "unpause"),
    "kill": ("kill", "start"),
    "disconnect": ("disconnect", "reconnect"),
}


@dataclass(frozen=True, slots=True)
class Drill:
    """One drill: which module, which store and fault, and how to tell closed from healthy."""

    module: str
    store: str
    fault: str
    failed_closed: Check
    """True once the module refuses (fails closed) with the store faulted."""
    healthy: Check
    """True once the module serves again."""
    fail_closed_bound_s: float = 1.0
    recover_bound_s: float = 30.0


@dataclass(frozen=True, slots=True)
class DrillResult:
    """What a drill measured; ``violations`` empty means it passed."""

    module: str
    store: str
    fault: str
    time_to_fail_closed_s: float | None
    time_to_recover_s: float | None
    histories_checked: int = 0
    violations: list[str] = field(default_factory=list)


def _wait(check: Check, container: ManagedContainer, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check(container):
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def run_drill(pool: ContainerPool, drill: Drill) -> DrillResult:
    """Run ``drill`` on the pool's ``drill.store`` container; the fault is always undone."""
    apply, undo = _FAULTS[drill.fault]
    container = pool.shared(drill.store)
    violations: list[str] = []
    if not drill.healthy(container):
        violations.append("not healthy before the fault")
    getattr(container, apply)()
    try:
        # Wait past the bound so a late fail-closed is measured, not just reported missing.
        closed = _wait(drill.failed_closed, container, drill.fail_closed_bound_s * 3)
    finally:
        getattr(container, undo)()
    recovered = _wait(drill.healthy, container, drill.recover_bound_s)
    container.restore()
    if closed is None or closed > drill.fail_closed_bound_s:
        violations.append(f"did not fail closed within {drill.fail_closed_bound_s:g} s")
    if recovered is None:
        violations.append(f"did not recover within {drill.recover_bound_s:g} s")
    return DrillResult(drill.module, drill.store, drill.fault, closed, recovered, 0, violations)


def chaos_drills_section(results: list[DrillResult]) -> dict[str, Any]:
    """Return the report's ``chaos_drills`` section for ``results``."""
    return {
        "drills": [asdict(r) for r in results],
        "violations": sum(len(r.violations) for r in results),
        "passed": all(not r.violations for r in results),
    }


def _probe_drill(store: str, fault: str) -> Drill:
    probe = PROBES[store]

    def up(c: ManagedContainer) -> bool:
        return probe(c.host, c.port, 0.2)

    return Drill(f"{store}-probe", store, fault, failed_closed=lambda c: not up(c), healthy=up)


def store_drills() -> list[Drill]:
    """The placeholder drill set: each store's wire probe under each fault."""
    return [_probe_drill(store, fault) for store in ("redis", "postgres") for fault in _FAULTS]


def main(argv: list[str]) -> int:
    """Run :func:`store_drills`; print the section; exit 1 on any violation or no Docker."""
    del argv
    try:
        pool = ContainerPool()
    except DockerUnavailable as exc:
        print(f"chaos_drills: {exc.reason}", file=sys.stderr)
        return 1
    try:
        section = chaos_drills_section([run_drill(pool, d) for d in store_drills()])
    finally:
        pool.close()
    print(json.dumps(section, indent=2))
    return 0 if section["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
