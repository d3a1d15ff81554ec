"""Readiness gates (may this instance take traffic?) and liveness (is the process alive?).

:func:`run_readiness_gates` runs two hard gates, ``database`` (the session's engine answers
``SELECT 1``) and ``global_write`` (the GLOBAL_WRITE kill switch does not read engaged), then every
pluggable :class:`ReadinessGate` of the session and of the call. Each gate runs on its own daemon
thread with its own timeout, all at once, so a hung gate costs its timeout and no more. A gate
passes by returning ``None`` or ``True``; it fails by returning ``False`` or a string (the
reason), by raising, or by timing out. Readiness is the conjunction of every gate.

:func:`check_liveness` checks no dependency at all: a liveness probe that pinged the database
would have the orchestrator restart every instance when the database blinks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, final

from pytest_reliability._lazy import deprecated_aliases
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.ops._deadline import Outcome, run_with_deadline
from pytest_reliability.ops.rbac import OpsContext, OpsSession, Permission, require_ops_permission

__all__ = [
    "DEFAULT_GATE_TIMEOUT",
    "LivenessResult",
    "ReadinessGate",
    "ReadinessGateResult",
    "ReadinessResult",
    "check_liveness",
    "run_readiness_gates",
]

DEFAULT_GATE_TIMEOUT = 2.0
"""Seconds a gate may take before it fails readiness."""

GateCheck = Callable[[], "bool | str | None"]
_PROCESS_START = time.monotonic()


@final
@dataclass(frozen=True, slots=True)
class ReadinessGate:
    """A named check with a timeout; ``hard`` gates are the built-in ones."""

    name: str
    check: GateCheck
    timeout: float = DEFAULT_GATE_TIMEOUT
    hard: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("a readiness gate needs a name")
        if not callable(self.check):
            raise ConfigurationError(f"readiness gate {self.name!r}: check is not callable")
        if not 0 < self.timeout <= 60:
            raise ConfigurationError(f"readiness gate {self.name!r}: timeout must be in (0, 60]")


@final
@dataclass(frozen=True, slots=True)
class ReadinessGateResult:
    """One gate's verdict: ``status`` pass or fail, how long it took, and why it failed."""

    name: str
    status: Literal["pass", "fail"]
    duration_s: float
    reason: str | None
    hard: bool


@final
@dataclass(frozen=True, slots=True)
class ReadinessResult:
    """Readiness: ``ready`` only when every gate passed; ``gates`` lists each in order."""

    ready: bool
    gates: tuple[ReadinessGateResult, ...]

    @property
    def http_status(self) -> int:
        """200 when ready, 503 otherwise."""
        return 200 if self.ready else 503

    def failed(self) -> tuple[ReadinessGateResult, ...]:
        """Return the gates that failed."""
        return tuple(g for g in self.gates if g.status == "fail")

    def as_json(self) -> dict[str, object]:
        """Return the result as a JSON object."""
        return {
            "status": "pass" if self.ready else "fail",
            "gates": [
                {
                    "name": g.name,
                    "status": g.status,
                    "durationMs": round(g.duration_s * 1000, 3),
                    "reason": g.reason,
                    "hard": g.hard,
                }
                for g in self.gates
            ],
        }


@final
@dataclass(frozen=True, slots=True)
class LivenessResult:
    """Liveness: the process answers. ``pid`` and ``uptime_s`` say which process and how long."""

    alive: bool
    pid: int
    uptime_s: float


def _database_gate(session: OpsSession) -> bool | str:
    engine = session.engine
    if engine is None:
        return "no database configured"
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1").scalar()
    return True


def _global_write_gate(session: OpsSession) -> bool | str:
    switches = session.kill_switches
    if switches is None:
        return "no kill switches configured"
    state = switches.state("GLOBAL_WRITE")
    if state.engaged:
        return f"GLOBAL_WRITE is engaged (source: {state.source})"
    return True


def hard_gates(session: OpsSession, timeout: float) -> tuple[ReadinessGate, ...]:
    """Return the built-in gates bound to ``session``."""
    return (
        ReadinessGate("database", lambda: _database_gate(session), timeout, hard=True),
        ReadinessGate("global_write", lambda: _global_write_gate(session), timeout, hard=True),
    )


def _verdict(gate: ReadinessGate, outcome: Outcome[bool | str | None]) -> ReadinessGateResult:
    duration = outcome.duration_s
    value: object = outcome.value  # a plugged-in gate may return anything: judge it at run time
    if outcome.timed_out:
        reason: str | None = f"timed out after {gate.timeout} s"
    elif outcome.error is not None:
        reason = f"raised {type(outcome.error).__name__}: {str(outcome.error)[:200]}"
    elif value is None or value is True:
        reason = None
    elif value is False:
        reason = "returned False"
    elif isinstance(value, str):
        reason = value or "returned an empty reason"
    else:
        reason = f"returned {type(value).__name__}, not bool, str or None"
    status: Literal["pass", "fail"] = "pass" if reason is None else "fail"
    return ReadinessGateResult(gate.name, status, duration, reason, gate.hard)


def run_readiness_gates(
    session: OpsSession,
    gates: Iterable[ReadinessGate] = (),
    *,
    ctx: OpsContext | None = None,
    timeout: float = DEFAULT_GATE_TIMEOUT,
) -> ReadinessResult:
    """Run the hard gates, ``session.gates`` and ``gates`` concurrently; never raises for a gate.

    ``timeout`` bounds the hard gates. With ``ctx`` (an operator asking on demand rather than the
    orchestrator probing), the ``ops.readiness.read`` permission is required and audited.
    """
    if ctx is not None:
        require_ops_permission(session, ctx, Permission.READINESS_READ, target="readiness")
    every = (*hard_gates(session, timeout), *session.gates, *gates)
    names = [g.name for g in every]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"readiness gate names must be unique: {names}")
    results: list[ReadinessGateResult | None] = [None] * len(every)

    def run(index: int, gate: ReadinessGate) -> None:
        results[index] = _verdict(gate, run_with_deadline(gate.check, gate.timeout, gate.name))

    threads = [
        threading.Thread(target=run, args=(i, g), name=f"readiness-{g.name}", daemon=True)
        for i, g in enumerate(every)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # run() itself returns within its gate's timeout; the margin covers thread start-up.
        thread.join()
    final_results = tuple(r for r in results if r is not None)
    ready = len(final_results) == len(every) and all(r.status == "pass" for r in final_results)
    return ReadinessResult(ready, final_results)


def check_liveness() -> LivenessResult:
    """Return liveness without touching any dependency."""
    return LivenessResult(True, os.getpid(), time.monotonic() - _PROCESS_START)


# ``GateResult`` was this class's name until it clashed with the report's GateResult in the ops
# package; the old name warns for one release.
__getattr__ = deprecated_aliases(__name__, {"GateResult": "ReadinessGateResult"})
