"""The health snapshot: database ping, process signals, kill switches and degradation.

:func:`get_health_snapshot` returns a :class:`HealthSnapshot` that renders as
``application/health+json`` (draft-inadarei-api-health-check): ``status`` is ``pass``, ``warn`` or
``fail`` (the worst of the checks), and ``checks`` are keyed ``component:measurement``, each a list
of objects with ``status``, ``observedValue``, ``observedUnit``, ``componentType``, ``time`` and,
when not passing, ``output``.

Two views. Without ``ctx`` the snapshot is the probe view a load balancer may poll anonymously:
statuses only, no values, no reasons. With ``ctx`` it is the detailed view and requires the
``ops.health.read`` permission (audited, like every ops entry point that reveals state).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, final

from pytest_reliability._version import __version__
from pytest_reliability.clock import system_clock
from pytest_reliability.ops._deadline import run_with_deadline
from pytest_reliability.ops._process_signals import read_process_signals
from pytest_reliability.ops.rbac import OpsContext, OpsSession, Permission, require_ops_permission
from pytest_reliability.protocols import Clock

__all__ = [
    "HEALTH_CONTENT_TYPE",
    "HealthCheck",
    "HealthSnapshot",
    "Status",
    "get_health_snapshot",
]

HEALTH_CONTENT_TYPE = "application/health+json"
"""The media type of the rendered snapshot."""

Status = Literal["pass", "warn", "fail"]
_RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}

DEFAULT_DB_TIMEOUT = 2.0
DEFAULT_DB_SLOW_MS = 250.0


@final
@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One measurement of one component (one entry of a ``checks`` list)."""

    key: str
    status: Status
    component_type: str
    observed_value: Any = None
    observed_unit: str | None = None
    output: str | None = None
    time: str = ""

    def as_json(self, *, detailed: bool) -> dict[str, Any]:
        """Return the entry; the probe view keeps only status, type and time."""
        out: dict[str, Any] = {
            "componentType": self.component_type,
            "status": self.status,
            "time": self.time,
        }
        if detailed:
            if self.observed_value is not None:
                out["observedValue"] = self.observed_value
            if self.observed_unit is not None:
                out["observedUnit"] = self.observed_unit
            if self.output:
                out["output"] = self.output
        return out


@final
@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A health snapshot; :meth:`as_json` / :meth:`render` give ``application/health+json``."""

    status: Status
    checks: tuple[HealthCheck, ...]
    detailed: bool
    time: str
    output: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    content_type = HEALTH_CONTENT_TYPE

    @property
    def http_status(self) -> int:
        """200 for pass and warn, 503 for fail (as the draft recommends)."""
        return 503 if self.status == "fail" else 200

    def check(self, key: str) -> HealthCheck:
        """Return the check named ``key`` (``component:measurement``); KeyError if absent."""
        for check in self.checks:
            if check.key == key:
                return check
        raise KeyError(key)

    def as_json(self) -> dict[str, Any]:
        """Return the ``application/health+json`` document as a dict."""
        doc: dict[str, Any] = {
            "status": self.status,
            "version": __version__.split(".")[0],
            "releaseId": __version__,
            "description": "pytest-reliability ops health",
            "checks": {},
        }
        for check in self.checks:
            doc["checks"].setdefault(check.key, []).append(check.as_json(detailed=self.detailed))
        if self.detailed and self.output:
            doc["output"] = self.output
        if self.notes:
            doc["notes"] = list(self.notes)
        return doc

    def render(self) -> str:
        """Return the document as JSON text."""
        return json.dumps(self.as_json(), sort_keys=True)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _database_check(session: OpsSession, now: str, timeout: float, slow_ms: float) -> HealthCheck:
    key = "database:responseTime"
    if session.engine is None:
        return HealthCheck(key, "fail", "datastore", output="no database configured", time=now)
    engine = session.engine

    def ping() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    outcome = run_with_deadline(ping, timeout, "health-db")
    ms = round(outcome.duration_s * 1000, 3)
    if outcome.timed_out:
        return HealthCheck(key, "fail", "datastore", ms, "ms", f"no answer in {timeout} s", now)
    if outcome.error is not None:
        error = f"{type(outcome.error).__name__}: {str(outcome.error)[:200]}"
        return HealthCheck(key, "fail", "datastore", ms, "ms", error, now)
    if ms > slow_ms:
        return HealthCheck(key, "warn", "datastore", ms, "ms", f"slower than {slow_ms} ms", now)
    return HealthCheck(key, "pass", "datastore", ms, "ms", None, now)


def _process_checks(now: str) -> list[HealthCheck]:
    signals = read_process_signals()
    values: list[tuple[str, Any, str | None]] = [
        ("process:pid", signals.pid, None),
        ("process:uptime", None if signals.uptime_s is None else round(signals.uptime_s, 3), "s"),
        ("process:residentMemory", signals.rss_bytes, "bytes"),
        ("process:threads", signals.threads, None),
        ("process:openFiles", signals.open_files, None),
    ]
    out = []
    for key, value, unit in values:
        status: Status = "pass" if value is not None else "warn"
        output = None if value is not None else "not readable on this platform"
        out.append(HealthCheck(key, status, "system", value, unit, output, now))
    return out


def _kill_switch_check(session: OpsSession, now: str) -> HealthCheck | None:
    switches = session.kill_switches
    if switches is None:
        return None
    key = "killSwitches:engaged"
    kind = switches.store.kind
    if switches.stale():
        return HealthCheck(
            key,
            "fail",
            "component",
            sorted(switches.engaged()),
            None,
            f"{kind} store unreadable for over {switches.staleness} s, every switch reads "
            f"engaged (fail closed): {switches.last_error}",
            now,
        )
    engaged = sorted(switches.engaged())
    if engaged:
        return HealthCheck(
            key, "warn", "component", engaged, None, f"engaged: {', '.join(engaged)}", now
        )
    return HealthCheck(key, "pass", "component", [], None, None, now)


def _degradation_check(session: OpsSession, now: str) -> HealthCheck | None:
    degradation = session.degradation
    if degradation is None:
        return None
    mode = degradation.mode
    status: Status = "pass" if mode == 0 else "warn"
    output = None if mode == 0 else f"degradation mode {mode.name}"
    return HealthCheck("degradation:mode", status, "component", mode.name, None, output, now)


def get_health_snapshot(
    session: OpsSession,
    ctx: OpsContext | None = None,
    *,
    clock: Clock | None = None,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
    db_slow_ms: float = DEFAULT_DB_SLOW_MS,
    extra_checks: Sequence[Callable[[datetime], HealthCheck]] = (),
) -> HealthSnapshot:
    """Take a health snapshot; the detailed view (``ctx`` given) needs ``ops.health.read``.

    The database ping runs with a deadline of ``db_timeout`` seconds and warns above
    ``db_slow_ms``; a stale kill switch store fails the snapshot (every switch reads engaged).
    ``extra_checks`` are called with the snapshot's instant (an SLO budget check, for one); one
    that raises fails the snapshot with the error as its output.
    """
    if ctx is not None:
        require_ops_permission(session, ctx, Permission.HEALTH_READ, target="health")
    instant = (clock or system_clock).now()
    now = _iso(instant)
    checks = [_database_check(session, now, db_timeout, db_slow_ms), *_process_checks(now)]
    for extra in (_kill_switch_check(session, now), _degradation_check(session, now)):
        if extra is not None:
            checks.append(extra)
    for index, plugged in enumerate(extra_checks):
        try:
            checks.append(replace(plugged(instant), time=now))
        except Exception as exc:  # fail closed: a check that cannot answer fails
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            key = str(getattr(plugged, "key", f"extra:{index}"))
            checks.append(HealthCheck(key, "fail", "component", None, None, error, now))
    worst: Status = max((c.status for c in checks), key=_RANK.__getitem__, default="pass")
    failing = [f"{c.key}: {c.output}" for c in checks if c.status != "pass" and c.output]
    return HealthSnapshot(
        status=worst,
        checks=tuple(checks),
        detailed=ctx is not None,
        time=now,
        output="; ".join(failing) or None,
    )
