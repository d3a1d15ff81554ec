"""The public names of property-based chaos: where they live and where they are re-exported."""

from __future__ import annotations

import inspect

import pytest_reliability.ops as ops
import pytest_reliability.ops.chaos_engine as chaos_engine
import pytest_reliability.strategies as strategies
import pytest_reliability.testing as testing
from pytest_reliability import errors

SCHEDULES = {
    "CALL_FAULT_KINDS",
    "CONNECTION_FAULT_KINDS",
    "DATABASE_FAULT_KINDS",
    "FAULT_KINDS",
    "SCHEDULE_VERSION",
    "AppliedSchedule",
    "FaultSchedule",
    "FaultTarget",
    "HistoryEvent",
    "PropertyStats",
    "ScheduledFault",
}


def test_the_schedule_names_are_exported_from_the_engine_and_ops() -> None:
    assert set(chaos_engine.__all__) >= SCHEDULES
    assert set(ops.__all__) >= SCHEDULES
    for name in SCHEDULES:
        assert getattr(ops, name) is getattr(chaos_engine, name)
        value = getattr(chaos_engine, name)
        if inspect.isclass(value):
            assert value.__doc__, name
    assert chaos_engine.FAULT_KINDS == (
        "exception",
        "return_value",
        "latency",
        "timeout",
        "database_operational",
        "database_disconnect",
        "connection_refused",
    )


def test_the_strategies_and_invariants() -> None:
    assert {"call_indexes", "fault_schedules", "latencies", "scheduled_faults"} <= set(
        strategies.__all__
    )
    invariants = {
        "assert_exactly_once",
        "assert_kill_switch_engaged",
        "assert_no_acknowledged_write_lost",
        "assert_not_ready",
        "exactly_once_violation",
    }
    assert invariants <= set(testing.__all__)
    for name in invariants:
        assert getattr(testing, name).__doc__, name


def test_the_errors_sit_in_the_tree() -> None:
    assert issubclass(errors.FaultScheduleError, errors.ChaosError)
    assert issubclass(errors.FaultScheduleError, errors.InvalidInput)
    assert issubclass(errors.ScheduleVersionError, errors.FaultScheduleError)
    assert issubclass(errors.ChaosInvariantViolated, errors.ChaosError)
    assert issubclass(errors.ChaosInvariantViolated, AssertionError)
