"""The invariant helpers, against the real modules under scheduled faults.

Each helper passes where the module keeps its promise (a kill switch whose SQLite store fails
reads engaged; readiness with a failing database says not ready) and raises
ChaosInvariantViolated, with the schedule, the history and the seed, where a deliberately broken
stand-in does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import ChaosInvariantViolated
from pytest_reliability.ops import AuthorizationEngine, KillSwitches, OpsSession
from pytest_reliability.ops.chaos_engine import (
    DATABASE_FAULT_KINDS,
    ChaosEngine,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)
from pytest_reliability.ops.readiness_gates import run_readiness_gates
from pytest_reliability.strategies import fault_schedules
from pytest_reliability.testing import (
    assert_exactly_once,
    assert_kill_switch_engaged,
    assert_no_acknowledged_write_lost,
    assert_not_ready,
)

DB = FaultTarget("db", kinds=DATABASE_FAULT_KINDS, max_call=1)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    yield engine
    engine.dispose()


def _engine() -> ChaosEngine:
    return ChaosEngine(seed=31337, in_test=True, environ={})


def test_a_violation_shows_the_invariant_schedule_history_and_seed() -> None:
    engine = _engine()
    schedule = FaultSchedule([ScheduledFault("json.dumps", "latency", on_call=2)])
    import json

    with engine.apply(schedule) as run:
        json.dumps(1)
        run.note("charged order-1")
        run.note("charged order-1 again")
    with pytest.raises(ChaosInvariantViolated) as caught:
        assert_exactly_once(run, effects={"order-1": 2}, acknowledged={"order-1": ["ch_1"]})
    message = str(caught.value)
    assert message.startswith(
        "chaos invariant violated: exactly one effect per key: key 'order-1': 2 effects\n"
    )
    assert "FaultSchedule([\n    ScheduledFault('json.dumps', 'latency', on_call=2),\n])" in message
    assert "fault 0 (latency at json.dumps): never fired" in message
    history = "1. json.dumps: call 1\n  2. test: charged order-1\n  3. test: charged order-1 again"
    assert history in message
    assert "seed: 31337 (replay: pytest --reliability-seed=31337)" in message
    assert caught.value.schedule == schedule
    assert isinstance(caught.value, AssertionError)  # pytest shows it as a failed assertion


def test_exactly_once_uses_the_checkers_model() -> None:
    assert_exactly_once(None, effects={"a": 1, "b": 0}, acknowledged={"a": ["r", "r"]})
    with pytest.raises(ChaosInvariantViolated, match="key 'b': 1 acknowledged deliveries but 0"):
        assert_exactly_once(None, effects={"a": 1}, acknowledged={"b": ["r"]})
    with pytest.raises(ChaosInvariantViolated, match="replayed responses differ"):
        assert_exactly_once(None, effects={"a": 1}, acknowledged={"a": ["r", "s"]})


def test_no_acknowledged_write_lost() -> None:
    store = {"a": 1, "b": 2}
    assert_no_acknowledged_write_lost(None, {"a": 1, "b": 2}, store.__getitem__)
    with pytest.raises(ChaosInvariantViolated, match="'c' was acknowledged, then lost"):
        assert_no_acknowledged_write_lost(None, {"c": 3}, store.__getitem__)
    with pytest.raises(ChaosInvariantViolated, match="acknowledged as 9 but reads 1"):
        assert_no_acknowledged_write_lost(None, {"a": 9}, store.__getitem__)

    def broken(_key: str) -> Any:
        raise ConnectionError("store down")

    with pytest.raises(ChaosInvariantViolated, match="raised ConnectionError: store down"):
        assert_no_acknowledged_write_lost(None, {"a": 1}, broken)


@settings(max_examples=15, database=None, deadline=None)
@given(schedule=fault_schedules([DB], min_faults=1, max_faults=2))
def test_a_kill_switch_whose_store_fails_reads_engaged(
    chaos: ChaosEngine, schedule: FaultSchedule, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = create_engine(f"sqlite:///{tmp_path_factory.mktemp('ks') / 'switches.db'}")
    clock = ManualClock()
    try:
        switches = KillSwitches.from_url(
            db, env={}, start=False, clock=clock, poll_interval=1, staleness=2
        )
        assert not switches.is_engaged("BILLING")
        with chaos.apply(schedule, targets=[DB.bind(db)]) as run:
            assert not switches.refresh()  # the store's first statement fails: unknown state
        clock.advance(3)  # past the staleness bound
        assert_kill_switch_engaged(run, switches, "BILLING")
        switches.close()
    finally:
        db.dispose()


def test_a_switch_set_that_reads_released_after_a_failure_is_caught() -> None:
    class Optimistic:  # the bug: treats "could not read" as "not engaged"
        def is_engaged(self, switch: str) -> bool:
            return False

    with pytest.raises(ChaosInvariantViolated, match="BILLING read False while its store"):
        assert_kill_switch_engaged(None, Optimistic(), "BILLING")


def _session(db: Engine) -> OpsSession:
    switches = KillSwitches.from_url("memory://", env={}, start=False)
    return OpsSession(AuthorizationEngine(), InMemoryAuditLog(), engine=db, kill_switches=switches)


@settings(max_examples=10, database=None, deadline=None)
@given(schedule=fault_schedules([DB], min_faults=1, max_faults=1))
def test_readiness_is_not_ready_while_the_database_fails(
    chaos: ChaosEngine, schedule: FaultSchedule, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Made per example, not by a function-scoped fixture: only chaos starts clean per example.
    db = create_engine(f"sqlite:///{tmp_path_factory.mktemp('ready') / 'ops.db'}")
    try:
        session = _session(db)
        assert run_readiness_gates(session).ready  # healthy before the faults
        with chaos.apply(schedule, targets=[DB.bind(db)]) as run:
            assert_not_ready(run, lambda: run_readiness_gates(session))
        assert run.unfired() == ()
    finally:
        db.dispose()


def test_a_readiness_that_answers_ready_while_failing_is_caught(sqlite: Engine) -> None:
    session = _session(sqlite)
    no_fault = _engine().apply(FaultSchedule(), targets=[DB.bind(sqlite)])
    with no_fault as run, pytest.raises(ChaosInvariantViolated, match="answered ready=True"):
        assert_not_ready(run, lambda: run_readiness_gates(session))

    def crashing() -> Any:
        raise RuntimeError("gate crashed")

    with pytest.raises(ChaosInvariantViolated, match="readiness check raised RuntimeError"):
        assert_not_ready(None, crashing)
