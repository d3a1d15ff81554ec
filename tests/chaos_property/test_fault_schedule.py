"""Fault schedules as data: the Python text and the JSON form rebuild the same schedule.

The round trips are properties over arbitrary schedules; the JSON loader is fuzzed with
arbitrary text and arbitrary JSON, which it either reads or refuses with a typed error.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_reliability.errors import FaultScheduleError, InvalidInput, ScheduleVersionError
from pytest_reliability.ops.chaos_engine import (
    FAULT_KINDS,
    SCHEDULE_VERSION,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)
from pytest_reliability.strategies import fault_schedules

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_ERRORS = st.sampled_from(
    [None, "builtins.TimeoutError", "pytest_reliability.errors.InjectedFault", "a.b.C"]
)


@st.composite
def any_faults(draw: st.DrawFn) -> ScheduledFault:
    """Any valid fault, parameters included (wider than what ``fault_schedules`` draws)."""
    kind = draw(st.sampled_from(FAULT_KINDS))
    target = draw(st.from_regex(r"[^\s]([^\n]{0,10}[^\s])?", fullmatch=True))
    error = draw(_ERRORS) if kind in ("exception", "timeout") else None
    value = draw(_JSON) if kind == "return_value" else None
    seconds = draw(st.floats(0, 60)) if kind in ("latency", "timeout") else 0.0
    on_call = draw(st.integers(1, 2**40))
    return ScheduledFault(target, kind, on_call, error=error, value=value, seconds=seconds)


schedules = st.lists(any_faults(), max_size=4).map(FaultSchedule)
# The machine these run on is shared: slow data generation there is load, not a bug.
_LOADED = settings(suppress_health_check=[HealthCheck.too_slow])


@_LOADED
@given(schedules)
def test_the_python_text_rebuilds_the_schedule(schedule: FaultSchedule) -> None:
    text = schedule.to_python()
    assert text == repr(schedule)
    rebuilt = eval(text, {"FaultSchedule": FaultSchedule, "ScheduledFault": ScheduledFault})
    assert rebuilt == schedule
    assert rebuilt.to_python() == text


@_LOADED
@given(schedules)
def test_the_json_form_rebuilds_the_schedule(schedule: FaultSchedule) -> None:
    assert FaultSchedule.loads(schedule.dumps()) == schedule
    assert FaultSchedule.from_json(json.loads(json.dumps(schedule.to_json()))) == schedule
    assert schedule.to_json()["schedule_version"] == SCHEDULE_VERSION


def test_a_schedule_file_round_trips(tmp_path: Path) -> None:
    schedule = FaultSchedule(
        [
            ScheduledFault("shop.gateway.charge", "timeout", on_call=2, seconds=0.5),
            ScheduledFault("db", "database_disconnect"),
            ScheduledFault("flags.enabled", "return_value", value={"beta": False}),
        ]
    )
    path = tmp_path / "schedule.json"
    schedule.save(path)
    assert FaultSchedule.load(path) == schedule
    assert json.loads(path.read_text())["schedule_version"] == SCHEDULE_VERSION


def test_a_schedule_is_immutable_and_hashable() -> None:
    schedule = FaultSchedule([ScheduledFault("m.f", "exception", error=KeyError)])
    with pytest.raises(AttributeError):
        schedule._faults = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        schedule.faults[0].on_call = 3  # type: ignore[misc]
    assert {schedule: 1}[FaultSchedule([ScheduledFault("m.f", "exception", error=KeyError)])]
    assert schedule.faults[0].error == "builtins.KeyError"  # a class is kept by its name


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.text() | st.binary())
def test_loading_arbitrary_text_reads_a_schedule_or_refuses_it(text: str | bytes) -> None:
    with contextlib.suppress(FaultScheduleError):
        FaultSchedule.loads(text)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["schedule_version", "faults", "other"]),
        _JSON
        | st.just(SCHEDULE_VERSION)
        | st.lists(st.dictionaries(st.sampled_from(["target", "kind", "on_call"]), _JSON)),
    )
)
def test_loading_arbitrary_json_reads_a_schedule_or_refuses_it(data: dict[str, Any]) -> None:
    try:
        schedule = FaultSchedule.from_json(data)
    except InvalidInput as exc:  # every refusal is the typed error, never a KeyError or such
        assert isinstance(exc, FaultScheduleError)  # noqa: PT017
    else:
        assert FaultSchedule.from_json(schedule.to_json()) == schedule


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"faults": []}', "version None is not supported"),
        ('{"schedule_version": 2, "faults": []}', "version 2 is not supported"),
        ('{"schedule_version": true, "faults": []}', "version True is not supported"),
    ],
)
def test_another_schema_version_is_refused_by_name(document: str, message: str) -> None:
    with pytest.raises(ScheduleVersionError, match=message) as caught:
        FaultSchedule.loads(document)
    assert caught.value.expected == SCHEDULE_VERSION


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "is a JSON object, not list"),
        ('{"schedule_version": 1}', "'faults' must be a JSON array"),
        ('{"schedule_version": 1, "faults": [], "x": 1}', "unknown field"),
        ('{"schedule_version": 1, "faults": [3]}', "fault 0: expected a JSON object"),
        ('{"schedule_version": 1, "faults": [{"kind": "latency"}]}', "missing field"),
        ('{"schedule_version": 1, "faults": [{"target": "a", "kind": "melt"}]}', "'melt'"),
        (
            '{"schedule_version": 1, "faults": [{"target": "a", "kind": "latency", "on_call": 0}]}',
            "on_call must be an integer of 1 or more",
        ),
        (
            '{"schedule_version": 1, "faults": '
            '[{"target": "a", "kind": "latency", "seconds": 61}]}',
            "seconds must be within",
        ),
        (
            '{"schedule_version": 1, "faults": [{"target": "a", "kind": "latency", "value": 1}]}',
            "only a return_value fault returns a value",
        ),
        (
            '{"schedule_version": 1, "faults": [{"target": "a", "kind": "exception", '
            '"error": "not a name"}]}',
            "exception class or its dotted name",
        ),
    ],
)
def test_a_malformed_schedule_is_refused_naming_the_problem(document: str, message: str) -> None:
    with pytest.raises(FaultScheduleError, match=message):
        FaultSchedule.loads(document)


def test_an_unreadable_file_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FaultScheduleError, match=r"nope\.json"):
        FaultSchedule.load(missing)
    bad = tmp_path / "old.json"
    bad.write_text('{"schedule_version": 0, "faults": []}')
    with pytest.raises(ScheduleVersionError, match=r"old\.json: fault schedule version 0"):
        FaultSchedule.load(bad)


def test_values_without_an_equal_json_form_are_refused() -> None:
    for value in [(1, 2), {1: "a"}, math.nan, object()]:
        with pytest.raises(FaultScheduleError):
            ScheduledFault("m.f", "return_value", value=value)


def test_a_target_declaration_is_checked() -> None:
    with pytest.raises(FaultScheduleError, match="unknown fault kind"):
        FaultTarget("m.f", kinds=("melt",))
    with pytest.raises(FaultScheduleError, match="mixes"):
        FaultTarget("m.f", kinds=("latency", "database_disconnect"))
    with pytest.raises(FaultScheduleError, match="needs address"):
        FaultTarget("cache", kinds=("connection_refused",))
    with pytest.raises(FaultScheduleError, match="max_call must be 1 or more"):
        FaultTarget("m.f", kinds=("latency",), max_call=0)


# -- the strategies --------------------------------------------------------------------------------

_X = FaultTarget("svc.x", kinds=("latency", "timeout", "exception"), max_seconds=0.05, max_call=4)
_Y = FaultTarget("svc.y", kinds=("latency", "exception"), errors=(KeyError, OSError))
_Z = FaultTarget("svc.z", kinds=("return_value", "latency"), values=(True, False, None))


def test_two_coinciding_faults_shrink_to_exactly_those_two() -> None:
    timeout = ScheduledFault("svc.x", "timeout", on_call=2, seconds=0.0)
    lie = ScheduledFault("svc.z", "return_value", value=False)
    failing: list[FaultSchedule] = []

    @settings(
        max_examples=2000,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fault_schedules([_X, _Y, _Z], max_faults=5))
    def only_together(schedule: FaultSchedule) -> None:
        # Fails only when svc.x times out on its second call (or later, with any delay) while
        # svc.z returns False: every other fault is noise the shrinker must remove.
        late = any(f.kind == "timeout" and f.target == "svc.x" and f.on_call >= 2 for f in schedule)
        lying = any(f.kind == "return_value" and f.value is False for f in schedule)
        if late and lying:
            failing.append(schedule)
            raise AssertionError(repr(schedule))

    with pytest.raises(AssertionError):
        only_together()
    shrunk = failing[-1]
    assert len(shrunk) == 2
    assert set(shrunk) == {timeout, lie}


@given(fault_schedules([_X, _Y, _Z], max_faults=3))
def test_drawn_faults_respect_their_targets(schedule: FaultSchedule) -> None:
    declared = {t.name: t for t in (_X, _Y, _Z)}
    assert len(schedule) <= 3
    for fault in schedule:
        target = declared[fault.target]
        assert fault.kind in target.kinds
        assert 1 <= fault.on_call <= target.max_call
        assert 0 <= fault.seconds <= target.max_seconds
        if fault.kind == "exception" and target.errors:
            assert fault.error in target.errors
        if fault.kind == "return_value":
            assert fault.value in target.values


@given(fault_schedules([_X, _Y, _Z], kinds=("latency",), min_faults=1, max_faults=2))
def test_kinds_narrow_what_is_drawn(schedule: FaultSchedule) -> None:
    assert 1 <= len(schedule) <= 2
    assert set(schedule.kinds()) == {"latency"}


def test_strategy_arguments_are_checked() -> None:
    from pytest_reliability.strategies import call_indexes, latencies, scheduled_faults

    with pytest.raises(FaultScheduleError, match="min_faults <= max_faults"):
        fault_schedules([_X], max_faults=-1)
    with pytest.raises(FaultScheduleError, match="at least one FaultTarget"):
        fault_schedules([])
    with pytest.raises(FaultScheduleError, match="no target allows any of the kinds timeout"):
        fault_schedules([_Y, _Z], kinds=("timeout",))
    with pytest.raises(FaultScheduleError, match="allows none of the kinds"):
        scheduled_faults(_Y, kinds=("return_value",))
    with pytest.raises(FaultScheduleError, match="max_call must be 1 or more"):
        call_indexes(0)
    with pytest.raises(FaultScheduleError, match="max_seconds must be within"):
        latencies(-1)
