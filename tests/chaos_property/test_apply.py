"""``chaos.apply(schedule)``: armed through the engine, fresh in every example, always removed.

Bad schedules (an unknown or unpatchable target, a kind its target does not allow, an unknown
exception class, a database fault without an engine) raise a typed error with nothing patched.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from pytest_reliability.errors import FaultScheduleError, InjectedFault
from pytest_reliability.ops.chaos_engine import (
    ChaosEngine,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)
from tests.chaos_property import checkout

CONNECT = f"{checkout.__name__}.connect"
READ = f"{checkout.__name__}.read_answer"
ORIGINALS = {name: getattr(checkout, name) for name in ("connect", "read_answer", "audit")}


def _engine() -> ChaosEngine:
    return ChaosEngine(in_test=True, environ={})


def _untouched() -> bool:
    return all(getattr(checkout, name) is fn for name, fn in ORIGINALS.items())


def test_a_schedule_fires_on_its_calls_and_is_removed_on_exit() -> None:
    engine = _engine()
    schedule = FaultSchedule(
        [
            ScheduledFault(CONNECT, "exception", on_call=2, error=ConnectionRefusedError),
            ScheduledFault(READ, "return_value", on_call=1, value="forged"),
        ]
    )
    with engine.apply(schedule) as run:
        checkout.connect("primary")
        with pytest.raises(ConnectionRefusedError, match="chaos: fault injected"):
            checkout.connect("primary")
        assert checkout.read_answer("primary", "ch_1") == "forged"
        assert checkout.read_answer("primary", "ch_1") == "ch_1"
    assert _untouched()
    assert [f.fired for f in run.faults] == [1, 1]
    assert run.unfired() == ()
    assert [str(e) for e in run.history] == [
        f"1. {CONNECT}: call 1",
        f"2. {CONNECT}: call 2: exception fault fired",
        f"3. {READ}: call 1: return_value fault fired",
        f"4. {READ}: call 2",
    ]
    # Kept apart from the hand-armed record: one schedule per example would swamp the report.
    assert engine.faults == ()
    assert engine.facts()["property"] == {
        "examples": 1,
        "distinct_schedules": 1,
        "fired_by_kind": {"exception": 1, "return_value": 1},
        "unfired_by_kind": {},
    }


def test_every_application_starts_with_fresh_call_counters() -> None:
    engine = _engine()
    schedule = FaultSchedule([ScheduledFault(READ, "timeout", on_call=2)])
    for _ in range(3):
        with engine.apply(schedule) as run:
            assert checkout.read_answer("p", "a") == "a"
            with pytest.raises(TimeoutError):
                checkout.read_answer("p", "b")
        assert run.faults[0].calls == 2
    assert engine.facts()["property"]["examples"] == 3
    assert engine.facts()["property"]["distinct_schedules"] == 1


def test_faults_that_never_fired_are_reported() -> None:
    engine = _engine()
    schedule = FaultSchedule(
        [ScheduledFault(CONNECT, "latency", on_call=1), ScheduledFault(READ, "timeout", on_call=3)]
    )
    with engine.apply(schedule) as run:
        checkout.connect("primary")
        checkout.read_answer("primary", "x")
    assert run.unfired() == (schedule.faults[1],)
    assert "fault 1 (timeout at " in run.describe()
    assert "never fired" in run.describe()
    assert engine.facts()["property"]["unfired_by_kind"] == {"timeout": 1}


def test_an_applied_schedule_arms_once() -> None:
    engine = _engine()
    run = engine.apply(FaultSchedule([ScheduledFault(CONNECT, "latency")]))
    with run:
        pass
    with pytest.raises(FaultScheduleError, match="arms once"), run:
        pass
    assert _untouched()
    with engine.apply(run.schedule) as again:  # a new application of the same schedule
        checkout.connect("primary")
    assert again.faults[0].fired == 1


def test_restore_removes_a_schedule_whose_block_was_never_left() -> None:
    engine = _engine()
    run = engine.apply(FaultSchedule([ScheduledFault(CONNECT, "exception")]))
    run.__enter__()
    with pytest.raises(InjectedFault):
        checkout.connect("primary")
    engine.restore()
    assert _untouched()
    checkout.connect("primary")


def test_a_database_fault_fails_the_nth_statement(tmp_path: Path) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    target = FaultTarget("db", kinds=("database_disconnect",)).bind(db)
    schedule = FaultSchedule([ScheduledFault("db", "database_disconnect", on_call=2)])
    try:
        with _engine().apply(schedule, targets=[target]) as run, db.connect() as conn:
            conn.execute(text("select 1"))
            with pytest.raises(OperationalError) as caught:
                conn.execute(text("select 2"))
            assert caught.value.connection_invalidated
        assert run.faults[0].fired == 1
        with db.connect() as conn:  # the listener is gone
            assert conn.execute(text("select 3")).scalar() == 3
    finally:
        db.dispose()


def test_a_refused_connection_at_host_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        schedule = FaultSchedule([ScheduledFault(f"127.0.0.1:{port}", "connection_refused")])
        with _engine().apply(schedule) as run:
            with socket.socket() as client, pytest.raises(ConnectionRefusedError):
                client.connect(("127.0.0.1", port))
            with socket.socket() as client:
                client.connect(("127.0.0.1", port))  # only the first call was scheduled
        assert run.faults[0].fired == 1


@pytest.mark.parametrize(
    ("fault", "targets", "message"),
    [
        (ScheduledFault("no.such.module.fn", "exception"), [], "no importable module"),
        (ScheduledFault(f"{checkout.__name__}.nope", "exception"), [], "no attribute 'nope'"),
        (ScheduledFault(f"{checkout.__name__}.TARGETS", "latency"), [], "no attribute"),
        (
            ScheduledFault(READ, "exception"),
            checkout.targets(),
            r"kind 'exception' is not allowed at .*read_answer.* \(allowed: latency, timeout\)",
        ),
        (ScheduledFault(CONNECT, "exception", error="builtins.nope"), [], "error 'builtins.nope'"),
        (ScheduledFault(CONNECT, "exception", error="json.dumps"), [], "not an exception class"),
        (ScheduledFault("db", "database_operational"), [], "needs a FaultTarget bound"),
        (ScheduledFault("cache", "connection_refused"), [], "needs a HOST:PORT target"),
    ],
)
def test_a_bad_schedule_is_refused_before_anything_is_armed(
    fault: ScheduledFault, targets: list[FaultTarget], message: str
) -> None:
    engine = _engine()
    # The good fault first: it must not stay armed when a later one is refused.
    schedule = FaultSchedule([ScheduledFault(CONNECT, "exception"), fault])
    with pytest.raises(FaultScheduleError, match=message) as caught:
        engine.apply(schedule, targets=targets)
    assert caught.value.index == 1
    assert _untouched()
    assert engine.facts()["injected"] == 0


def test_a_target_that_breaks_between_check_and_arming_leaves_nothing_armed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = _engine()
    schedule = FaultSchedule(
        [ScheduledFault(CONNECT, "exception"), ScheduledFault(READ, "latency", seconds=0.001)]
    )
    run = engine.apply(schedule)
    monkeypatch.delattr(checkout, "read_answer")
    with pytest.raises(Exception, match="read_answer"):
        run.__enter__()
    assert checkout.connect is ORIGINALS["connect"]
    checkout.connect("primary")


def test_apply_refuses_what_is_not_a_schedule() -> None:
    with pytest.raises(FaultScheduleError, match="takes a FaultSchedule"):
        _engine().apply([ScheduledFault(CONNECT, "exception")])  # type: ignore[arg-type]
    with pytest.raises(FaultScheduleError, match="FaultTarget values"):
        _engine().apply(FaultSchedule(), targets=["db"])  # type: ignore[list-item]


def test_a_fault_armed_by_hand_inside_an_example_is_gone_in_the_next() -> None:
    engine = _engine()
    seen: list[bool] = []

    @settings(max_examples=5, database=None)
    @given(st.integers(0, 3))
    def example(_n: int) -> None:
        # Another example's fault would fire here on the first call.
        checkout.connect("primary")
        engine.raise_exception(CONNECT, ConnectionRefusedError)
        with pytest.raises(ConnectionRefusedError):
            checkout.connect("primary")
        seen.append(True)

    example()
    assert len(seen) >= 2
    assert _untouched()
    engine.restore()  # nothing left to undo, and no undo runs twice
    assert _untouched()


def test_production_refuses_a_schedule_too() -> None:
    from pytest_reliability.errors import ChaosDisabled

    engine = ChaosEngine(in_test=True, environ={})
    engine._environ = {"APP_ENV": "production"}  # the process turned out to be production
    run = engine.apply(FaultSchedule([ScheduledFault(CONNECT, "exception")]))
    with pytest.raises(ChaosDisabled):
        run.__enter__()
    assert _untouched()


def test_the_facts_are_json() -> None:
    engine = _engine()
    schedule = FaultSchedule([ScheduledFault(READ, "return_value", value=[1, {"a": None}])])
    with engine.apply(schedule):
        checkout.read_answer("p", "x")
    json.dumps(engine.facts())


def test_a_target_may_name_its_path_or_an_alias() -> None:
    declared = FaultTarget("gateway", kinds=("exception",), path=CONNECT)
    schedule = FaultSchedule([ScheduledFault("gateway", "exception")])
    run = _engine().apply(schedule, targets=[declared])
    with run, pytest.raises(InjectedFault, match=r"checkout\.connect"):
        checkout.connect("primary")
    assert run.faults[0].target == CONNECT
    # An alias from pytest_reliability_chaos_targets, undeclared: a call kind at its path.
    aliased = ChaosEngine(in_test=True, environ={}, targets={"answer": READ})
    timeout = aliased.apply(FaultSchedule([ScheduledFault("answer", "timeout")]))
    with timeout, pytest.raises(TimeoutError):
        checkout.read_answer("primary", "x")
    assert _untouched()


async def fetch_async(key: str) -> str:
    """A coroutine target: latency and timeout faults sleep without blocking the loop."""
    return key


def test_a_schedule_faults_coroutines_too() -> None:
    import asyncio

    here = f"{__name__}.fetch_async"
    schedule = FaultSchedule(
        [
            ScheduledFault(here, "latency", on_call=1, seconds=0.001),
            ScheduledFault(here, "timeout", on_call=2),
        ]
    )

    async def calls() -> list[str]:
        first = await fetch_async("a")
        with pytest.raises(TimeoutError):
            await fetch_async("b")
        return [first, await fetch_async("c")]

    module = sys.modules[__name__]
    original = module.fetch_async
    with _engine().apply(schedule) as run:
        assert asyncio.run(calls()) == ["a", "c"]
    assert [f.fired for f in run.faults] == [1, 1]
    assert module.fetch_async is original
