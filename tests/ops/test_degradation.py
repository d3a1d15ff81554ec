"""The degradation ladder and its guard."""

from __future__ import annotations

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import (
    ConfigurationError,
    InvalidInput,
    OperationRefused,
    PermissionDenied,
)
from pytest_reliability.ops.degradation import (
    Criticality,
    Degradation,
    DegradationMode,
    OpsLevel,
    ops_level,
)
from pytest_reliability.ops.rbac import OpsSession
from pytest_reliability.tenancy import tenant_scope
from tests.ops.conftest import OPERATOR, VIEWER, platform_events

EXPECTED_RUNS = {
    DegradationMode.NORMAL: {"OPTIONAL", "DEFERRABLE", "IMPORTANT", "ESSENTIAL"},
    DegradationMode.DEGRADED: {"DEFERRABLE", "IMPORTANT", "ESSENTIAL"},
    DegradationMode.PARTIAL_OUTAGE: {"IMPORTANT", "ESSENTIAL"},
    DegradationMode.EMERGENCY: {"ESSENTIAL"},
}


@pytest.mark.parametrize("mode", list(DegradationMode))
def test_each_rung_sheds_what_the_ladder_says(session: OpsSession, mode: DegradationMode) -> None:
    degradation = Degradation(session)
    degradation.set_mode(mode, reason="drill", ctx=OPERATOR)
    ran = set()
    for criticality in Criticality:
        try:
            with degradation.guard("work", criticality):
                ran.add(criticality.name)
        except OperationRefused:
            pass
    assert ran == EXPECTED_RUNS[mode]


def test_emergency_refuses_non_essential_work_and_audits_each_refusal(
    session: OpsSession, audit: InMemoryAuditLog
) -> None:
    degradation = Degradation(session)
    calls: list[str] = []

    @degradation.guard("send_digest_email", Criticality.IMPORTANT)
    def send_digest() -> None:
        calls.append("sent")

    send_digest()
    degradation.set_mode("emergency", reason="datacenter fire", ctx=OPERATOR)
    with pytest.raises(OperationRefused, match="send_digest_email"):
        send_digest()
    with tenant_scope("acme"), pytest.raises(OperationRefused):
        degradation.check("export_report")
    with degradation.guard("login", Criticality.ESSENTIAL):
        calls.append("login")
    assert calls == ["sent", "login"]
    refusals = platform_events(audit, "ops.degradation.refused")
    assert refusals == [
        ("ops.degradation.refused", "system", "operation:send_digest_email", "refused")
    ]
    with tenant_scope("acme"):
        (event,) = audit.events(action="ops.degradation.refused")
    assert event.details == {"mode": "EMERGENCY", "criticality": "OPTIONAL"}


def test_mode_changes_need_the_permission_and_are_audited(
    session: OpsSession, audit: InMemoryAuditLog
) -> None:
    degradation = Degradation(session)
    with pytest.raises(PermissionDenied):
        degradation.set_mode(DegradationMode.EMERGENCY, reason="prank", ctx=VIEWER)
    assert degradation.mode is DegradationMode.NORMAL
    degradation.set_mode(DegradationMode.PARTIAL_OUTAGE, reason="replica lag", ctx=OPERATOR)
    state = degradation.state(VIEWER)
    assert (state.mode, state.level, state.actor, state.reason) == (
        DegradationMode.PARTIAL_OUTAGE,
        OpsLevel.PARTIAL_OUTAGE,
        "alice@ops",
        "replica lag",
    )
    assert platform_events(audit, "ops.degradation.set") == [
        ("ops.degradation.set", "alice@ops", "degradation", "success")
    ]


def test_modes_map_to_ops_levels() -> None:
    assert [ops_level(m).value for m in DegradationMode] == [
        "operational",
        "degraded_performance",
        "partial_outage",
        "major_outage",
    ]


def test_bad_input(session: OpsSession) -> None:
    degradation = Degradation(session)
    with pytest.raises(ConfigurationError, match="unknown degradation mode"):
        degradation.set_mode("PANIC", reason="r", ctx=OPERATOR)
    with pytest.raises(InvalidInput):
        degradation.set_mode(DegradationMode.DEGRADED, reason="", ctx=OPERATOR)
    with pytest.raises(ConfigurationError):
        degradation.guard("")
    assert degradation.mode is DegradationMode.NORMAL


def test_the_guard_works_on_coroutines(session: OpsSession) -> None:
    import asyncio

    degradation = Degradation(session)

    @degradation.guard("recommendations", Criticality.OPTIONAL)
    async def recommend() -> str:
        return "ok"

    async def scenario() -> str:
        first = await recommend()
        degradation.set_mode(DegradationMode.DEGRADED, reason="load", ctx=OPERATOR)
        with pytest.raises(OperationRefused):
            await recommend()
        with pytest.raises(OperationRefused):
            async with degradation.guard("preview"):
                pass
        return first

    assert asyncio.run(scenario()) == "ok"
