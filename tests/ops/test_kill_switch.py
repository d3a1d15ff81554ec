"""Kill switches in one process: guards, precedence, RBAC, audit and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import (
    ConfigurationError,
    InvalidInput,
    KillSwitchEngaged,
    PermissionDenied,
)
from pytest_reliability.ops.kill_switch import KillSwitch, KillSwitches, register_switch
from pytest_reliability.ops.rbac import OpsSession
from tests.ops.conftest import NOBODY, OPERATOR, VIEWER, platform_events

pytestmark = pytest.mark.kill_switch


@pytest.fixture
def switches(session: OpsSession) -> KillSwitches:
    return KillSwitches.from_url("memory://", session=session, env={})


def test_engage_blocks_the_guard_and_release_lets_it_run(switches: KillSwitches) -> None:
    calls: list[str] = []

    @switches.guard(KillSwitch.BILLING)
    def charge(amount: int) -> int:
        calls.append("charged")
        return amount

    assert charge(5) == 5
    switches.engage(KillSwitch.BILLING, reason="card processor incident", actor=OPERATOR)
    assert switches.is_engaged("BILLING")
    with pytest.raises(KillSwitchEngaged) as info:
        charge(5)
    assert info.value.switch == "BILLING"
    with pytest.raises(KillSwitchEngaged), switches.guard("BILLING"):
        calls.append("inside block")
    switches.release(KillSwitch.BILLING, reason="resolved", actor=OPERATOR)
    assert charge(7) == 7
    assert calls == ["charged", "charged"]


def test_global_write_blocks_every_write_guard_but_not_read_guards(
    switches: KillSwitches,
) -> None:
    switches.engage("GLOBAL_WRITE", reason="migration", actor=OPERATOR)
    for name in KillSwitch:
        with pytest.raises(KillSwitchEngaged) as info, switches.guard(name):
            pass
        assert info.value.switch == "GLOBAL_WRITE"
    # A read-only call to an integration is not a write: GLOBAL_WRITE leaves it alone.
    with switches.guard(KillSwitch.EXTERNAL_INTEGRATIONS, write=False):
        pass
    assert not switches.is_engaged("BILLING")  # is_engaged reports the switch itself


def test_other_switches_stay_independent(switches: KillSwitches) -> None:
    switches.engage("WEBHOOKS", reason="loop", actor=OPERATOR)
    with switches.guard("BILLING"):
        pass
    assert switches.engaged() == {"WEBHOOKS"}


def test_flips_go_through_rbac_and_the_audit_log(switches: KillSwitches, audit: object) -> None:
    switches.engage("BILLING", reason="fraud spike", actor=OPERATOR)
    with pytest.raises(PermissionDenied) as info:
        switches.release("BILLING", reason="just because", actor=VIEWER)
    assert info.value.permission == "ops.kill_switch.release"
    assert info.value.actor == VIEWER.actor
    with pytest.raises(PermissionDenied):
        switches.engage("WEBHOOKS", reason="x", actor=NOBODY)
    assert switches.is_engaged("BILLING")
    assert not switches.is_engaged("WEBHOOKS")
    events = platform_events(audit)  # type: ignore[arg-type]
    assert events == [
        ("ops.permission", "alice@ops", "kill_switch:BILLING", "allow"),
        ("ops.kill_switch.engage", "alice@ops", "kill_switch:BILLING", "success"),
        ("ops.permission", "victor@ops", "kill_switch:BILLING", "deny"),
        ("ops.permission", "mallory@example", "kill_switch:WEBHOOKS", "deny"),
    ]
    state = switches.state("BILLING")
    assert state.record is not None
    assert (state.record.actor, state.record.reason) == ("alice@ops", "fraud spike")


def test_without_a_session_every_flip_is_denied() -> None:
    with KillSwitches.from_url("memory://", env={}) as switches:
        with pytest.raises(PermissionDenied):
            switches.engage("BILLING", reason="r", actor="root")
        assert not switches.is_engaged("BILLING")


def test_status_reveals_records_only_to_readers(switches: KillSwitches) -> None:
    switches.engage("BILLING", reason="why", actor=OPERATOR)
    status = switches.status(VIEWER)
    assert status["BILLING"].engaged
    assert status["BILLING"].source == "store"
    assert status["GLOBAL_WRITE"].source == "default"
    with pytest.raises(PermissionDenied):
        switches.status(NOBODY)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GLOBAL_WRITE,BILLING", {"GLOBAL_WRITE", "BILLING"}),
        (" billing , Webhooks ", {"BILLING", "WEBHOOKS"}),
        ("BILLING,", {"BILLING"}),
        ("", set()),
    ],
)
def test_env_override_engages_whatever_the_store_says(
    session: OpsSession, raw: str, expected: set[str]
) -> None:
    switches = KillSwitches.from_url("memory://", session=session, env={"OPS_KILL_SWITCH": raw})
    assert switches.engaged() == expected
    for name in expected:
        switches.release(name, reason="try to override the environment", actor=OPERATOR)
        state = switches.state(name)
        assert state.engaged
        assert state.source == "env"


@pytest.mark.parametrize(
    "raw", ["BILLING;WEBHOOKS", "BILL ING", "NOPE", "billing,unknown_one", "1X"]
)
def test_malformed_or_unknown_env_override_fails_at_start_up(session: OpsSession, raw: str) -> None:
    with pytest.raises(ConfigurationError, match="OPS_KILL_SWITCH"):
        KillSwitches.from_url("memory://", session=session, env={"OPS_KILL_SWITCH": raw})


def test_env_override_is_read_from_the_process_environment(
    session: OpsSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_KILL_SWITCH", "background_jobs")
    switches = KillSwitches.from_url("memory://", session=session)
    assert switches.is_engaged("BACKGROUND_JOBS")


def test_a_repository_registers_its_own_switch(session: OpsSession) -> None:
    register_switch("SEARCH_REINDEX")
    switches = KillSwitches.from_url(
        "memory://", session=session, env={"OPS_KILL_SWITCH": "search_reindex"}
    )
    assert switches.is_engaged("SEARCH_REINDEX")
    with pytest.raises(ConfigurationError):
        register_switch("lower-case")


def test_bad_input_is_typed_and_writes_nothing(switches: KillSwitches, audit: object) -> None:
    with pytest.raises(ConfigurationError, match="unknown kill switch"):
        switches.engage("NOT_A_SWITCH", reason="r", actor=OPERATOR)
    with pytest.raises(ConfigurationError):
        switches.is_engaged("NOT_A_SWITCH")
    with pytest.raises(ConfigurationError):
        switches.guard("NOT_A_SWITCH")
    with pytest.raises(InvalidInput):
        switches.engage("BILLING", reason="  ", actor=OPERATOR)
    with pytest.raises(InvalidInput):
        switches.engage("BILLING", reason="x", actor="")
    assert platform_events(audit) == []  # type: ignore[arg-type]
    assert switches.engaged() == frozenset()


def test_unknown_url_scheme_and_bad_timings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        KillSwitches.from_url("mongodb://localhost/x", env={})
    with pytest.raises(ConfigurationError):
        KillSwitches.from_url("memory://", env={}, poll_interval=5, staleness=6)
    with pytest.raises(ConfigurationError):
        KillSwitches.from_url("memory://", env={}, namespace="bad namespace")


def test_unreadable_store_reads_engaged_after_the_staleness_bound(
    session: OpsSession, tmp_path: Path
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    clock = ManualClock()
    switches = KillSwitches.from_url(
        f"sqlite:///{folder / 'ks.db'}",
        session=session,
        env={},
        clock=clock,
        poll_interval=1,
        staleness=5,
        start=False,
    )
    try:
        assert switches.engaged() == frozenset()
        shutil.rmtree(folder)  # the store is gone: reads now fail
        switches.store.close()
        assert switches.refresh() is False
        clock.advance(4.9)
        assert not switches.is_engaged("BILLING"), "still inside the staleness bound"
        clock.advance(0.2)
        assert switches.stale()
        assert all(switches.is_engaged(name) for name in KillSwitch)
        with pytest.raises(KillSwitchEngaged, match="store unreadable"):
            switches.check("BILLING", write=False)
        assert switches.state("WEBHOOKS").source == "stale"
        assert switches.last_error is not None
    finally:
        switches.close()


def test_a_store_down_at_start_up_starts_engaged(session: OpsSession) -> None:
    # Nothing listens on port 1: the switches must start closed, not released.
    with KillSwitches.from_url(
        "redis://127.0.0.1:1/0", session=session, env={}, poll_interval=0.05, staleness=0.2
    ) as switches:
        assert switches.stale()
        assert switches.is_engaged("BILLING")
        assert "ConnectionError" in (switches.last_error or "")


def test_guards_work_on_coroutines(switches: KillSwitches) -> None:
    import asyncio
    import inspect

    @switches.guard("WEBHOOKS")
    async def deliver() -> str:
        return "delivered"

    async def scenario() -> list[str]:
        out = [await deliver()]
        coroutine = deliver()  # made while released...
        switches.engage("WEBHOOKS", reason="r", actor=OPERATOR)
        with pytest.raises(KillSwitchEngaged):
            await coroutine  # ...refused when it runs
        with pytest.raises(KillSwitchEngaged):
            async with switches.guard("WEBHOOKS"):
                out.append("inside")
        return out

    assert inspect.iscoroutinefunction(deliver)
    assert asyncio.run(scenario()) == ["delivered"]
