"""Health (application/health+json), readiness gates with timeouts, and liveness."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.db import make_engine
from pytest_reliability.errors import ConfigurationError, PermissionDenied
from pytest_reliability.ops.degradation import Degradation, DegradationMode
from pytest_reliability.ops.health_checks import HEALTH_CONTENT_TYPE, get_health_snapshot
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsSession
from pytest_reliability.ops.readiness_gates import (
    ReadinessGate,
    check_liveness,
    run_readiness_gates,
)
from tests.ops.conftest import NOBODY, OPERATOR, VIEWER, platform_events


@pytest.fixture
def full_session(
    authz: AuthorizationEngine, audit: InMemoryAuditLog, engine: Engine
) -> Iterator[OpsSession]:
    """A session on SQLite and on the real PostgreSQL, with switches and degradation."""
    base = OpsSession(authz, audit, engine)
    switches = KillSwitches.from_url("memory://", session=base, env={})
    yield OpsSession(authz, audit, engine, switches, Degradation(base))
    switches.close()


def test_health_renders_as_health_json(full_session: OpsSession) -> None:
    snapshot = get_health_snapshot(full_session, VIEWER)
    assert snapshot.content_type == HEALTH_CONTENT_TYPE == "application/health+json"
    doc = json.loads(snapshot.render())
    assert doc["status"] == "pass"
    assert snapshot.http_status == 200
    checks = doc["checks"]
    assert set(checks) == {
        "database:responseTime",
        "process:pid",
        "process:uptime",
        "process:residentMemory",
        "process:threads",
        "process:openFiles",
        "killSwitches:engaged",
        "degradation:mode",
    }
    db = checks["database:responseTime"][0]
    assert db["status"] == "pass"
    assert db["observedUnit"] == "ms"
    assert 0 < db["observedValue"] < 2000
    assert checks["process:pid"][0]["observedValue"] == os.getpid()
    assert checks["process:residentMemory"][0]["observedValue"] > 1_000_000
    assert checks["process:threads"][0]["observedValue"] >= 1
    assert checks["process:openFiles"][0]["observedValue"] >= 3
    assert checks["process:uptime"][0]["observedValue"] > 0
    for entries in checks.values():
        assert entries[0]["time"].endswith("Z")
        assert entries[0]["status"] in ("pass", "warn", "fail")


def test_engaged_switches_and_degradation_warn_with_reasons(full_session: OpsSession) -> None:
    full_session.kill_switches.engage("BILLING", reason="r", actor=OPERATOR)
    full_session.degradation.set_mode(DegradationMode.DEGRADED, reason="slow db", ctx=OPERATOR)
    snapshot = get_health_snapshot(full_session, VIEWER)
    assert snapshot.status == "warn"
    assert snapshot.check("killSwitches:engaged").observed_value == ["BILLING"]
    assert snapshot.check("degradation:mode").observed_value == "DEGRADED"
    assert "engaged: BILLING" in (snapshot.output or "")


def test_the_probe_view_reveals_statuses_only_and_the_detail_needs_rbac(
    full_session: OpsSession, audit: InMemoryAuditLog
) -> None:
    full_session.kill_switches.engage("WEBHOOKS", reason="secret reason", actor=OPERATOR)
    probe = get_health_snapshot(full_session).render()
    assert "WEBHOOKS" not in probe
    assert "observedValue" not in probe
    assert json.loads(probe)["status"] == "warn"
    with pytest.raises(PermissionDenied):
        get_health_snapshot(full_session, NOBODY)
    get_health_snapshot(full_session, VIEWER)
    reads = [e for e in platform_events(audit, "ops.permission") if e[2] == "health"]
    assert [e[3] for e in reads] == ["deny", "allow"]


def test_an_unreachable_database_fails_health_and_readiness(
    authz: AuthorizationEngine, audit: InMemoryAuditLog
) -> None:
    engine = make_engine(
        "postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    session = OpsSession(authz, audit, engine)
    snapshot = get_health_snapshot(session, VIEWER)
    assert snapshot.status == "fail"
    assert snapshot.http_status == 503
    assert "OperationalError" in (snapshot.check("database:responseTime").output or "")
    result = run_readiness_gates(session)
    assert not result.ready
    assert {g.name for g in result.failed()} == {"database", "global_write"}
    engine.dispose()


def test_a_stale_kill_switch_store_fails_health_and_says_why(
    authz: AuthorizationEngine, audit: InMemoryAuditLog, sqlite_engine: Engine
) -> None:
    clock = ManualClock()
    base = OpsSession(authz, audit, sqlite_engine)
    switches = KillSwitches.from_url(
        "redis://127.0.0.1:1/0", session=base, env={}, clock=clock, staleness=2, start=False
    )
    session = OpsSession(authz, audit, sqlite_engine, switches)
    snapshot = get_health_snapshot(session, VIEWER)
    check = snapshot.check("killSwitches:engaged")
    assert check.status == "fail"
    assert "redis store unreadable" in (check.output or "")
    assert "fail closed" in (check.output or "")
    result = run_readiness_gates(session)
    assert result.failed()[0].reason == "GLOBAL_WRITE is engaged (source: stale)"
    switches.close()


def test_readiness_passes_lists_every_gate_and_global_write_fails_it(
    full_session: OpsSession,
) -> None:
    result = run_readiness_gates(full_session, [ReadinessGate("cache", lambda: True)])
    assert result.ready
    assert [(g.name, g.status, g.hard) for g in result.gates] == [
        ("database", "pass", True),
        ("global_write", "pass", True),
        ("cache", "pass", False),
    ]
    assert all(g.duration_s >= 0 for g in result.gates)
    full_session.kill_switches.engage("GLOBAL_WRITE", reason="freeze", actor=OPERATOR)
    result = run_readiness_gates(full_session)
    assert not result.ready
    assert result.http_status == 503
    (failed,) = result.failed()
    assert failed.name == "global_write"
    assert failed.reason == "GLOBAL_WRITE is engaged (source: store)"


def test_a_gate_that_raises_times_out_or_says_no_fails_readiness(
    full_session: OpsSession,
) -> None:
    release = threading.Event()

    def hangs() -> None:
        release.wait(30)

    def raises() -> None:
        raise RuntimeError("queue broker gone")

    gates = [
        ReadinessGate("hangs", hangs, timeout=0.2),
        ReadinessGate("raises", raises),
        ReadinessGate("says_no", lambda: "migrations pending"),
        ReadinessGate("false", lambda: False),
        ReadinessGate("odd", lambda: 42),  # type: ignore[arg-type,return-value]
    ]
    start = time.monotonic()
    result = run_readiness_gates(full_session, gates)
    elapsed = time.monotonic() - start
    release.set()
    assert elapsed < 2, "a hung gate must cost its timeout, not hang readiness"
    reasons = {g.name: g.reason for g in result.failed()}
    assert reasons == {
        "hangs": "timed out after 0.2 s",
        "raises": "raised RuntimeError: queue broker gone",
        "says_no": "migrations pending",
        "false": "returned False",
        "odd": "returned int, not bool, str or None",
    }
    assert not result.ready
    assert result.as_json()["status"] == "fail"


def test_session_gates_and_bad_gates(full_session: OpsSession) -> None:
    session = OpsSession(
        full_session.authz,
        full_session.audit,
        full_session.engine,
        full_session.kill_switches,
        gates=(ReadinessGate("search", lambda: None),),
    )
    assert [g.name for g in run_readiness_gates(session).gates][-1] == "search"
    with pytest.raises(ConfigurationError):
        ReadinessGate("slow", lambda: None, timeout=0)
    with pytest.raises(ConfigurationError, match="unique"):
        run_readiness_gates(session, [ReadinessGate("database", lambda: None)])


def test_readiness_on_demand_needs_the_permission(full_session: OpsSession) -> None:
    assert run_readiness_gates(full_session, ctx=VIEWER).ready
    with pytest.raises(PermissionDenied):
        run_readiness_gates(full_session, ctx=NOBODY)


def test_liveness_touches_no_dependency() -> None:
    # It takes no session: with the database down the process is still alive, no restart storm.
    liveness = check_liveness()
    assert liveness.alive
    assert liveness.pid == os.getpid()
    assert liveness.uptime_s >= 0
