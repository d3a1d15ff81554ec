"""One guard implementation behind the kill switch guard and the degradation guard."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import KillSwitchEngaged, OperationRefused
from pytest_reliability.ops import (
    AuthorizationEngine,
    Criticality,
    Degradation,
    DegradationMode,
    KillSwitches,
    OpsContext,
    OpsSession,
)
from pytest_reliability.ops._guard import Guard


class Refuser:
    """A check that counts its calls and refuses while ``refuse`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.refuse = False

    def __call__(self) -> None:
        self.calls += 1
        if self.refuse:
            raise PermissionError("refused")


def test_the_guard_checks_on_entry_sync_and_async() -> None:
    check = Refuser()
    guard = Guard(check, "test")
    with guard:
        pass

    async def enter() -> None:
        async with guard:
            pass

    asyncio.run(enter())
    assert check.calls == 2
    check.refuse = True
    with pytest.raises(PermissionError), guard:
        pytest.fail("the guarded block ran")
    with pytest.raises(PermissionError):
        asyncio.run(enter())
    assert repr(guard) == "<Guard test>"


def test_the_guard_decorates_functions_and_coroutine_functions() -> None:
    check = Refuser()
    guard = Guard(check, "test")

    @guard
    def add(a: int, b: int) -> int:
        return a + b

    @guard
    async def aadd(a: int, b: int) -> int:
        return a + b

    assert add.__name__ == "add"
    assert inspect.iscoroutinefunction(aadd)
    coroutine = aadd(1, 2)
    assert check.calls == 0, "a coroutine is checked when it runs, not when it is created"
    assert asyncio.run(coroutine) == 3
    assert add(1, 2) == 3
    assert check.calls == 2
    check.refuse = True
    with pytest.raises(PermissionError):
        add(1, 2)
    with pytest.raises(PermissionError):
        asyncio.run(aadd(1, 2))


def test_kill_switch_and_degradation_guards_are_the_one_guard() -> None:
    authz = AuthorizationEngine()
    authz.grant("ops", "ops_operator")
    session = OpsSession(authz, InMemoryAuditLog())
    actor = OpsContext("ops")
    degradation = Degradation(session)
    with KillSwitches.from_url("memory://", session=session, env={}, start=False) as switches:
        switch_guard = switches.guard("BILLING")
        shed_guard = degradation.guard("thumbnails", Criticality.OPTIONAL)
        assert type(switch_guard) is Guard
        assert type(shed_guard) is Guard

        @switch_guard
        @shed_guard
        async def work() -> str:
            return "done"

        assert asyncio.run(work()) == "done"
        switches.engage("BILLING", reason="test", actor=actor)
        with pytest.raises(KillSwitchEngaged):
            asyncio.run(work())
        switches.release("BILLING", reason="test", actor=actor)
        degradation.set_mode(DegradationMode.DEGRADED, reason="test", ctx=actor)
        with pytest.raises(OperationRefused):
            asyncio.run(work())
