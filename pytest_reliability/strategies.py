"""Hypothesis strategies for idempotency property tests and property-based chaos.

``request_sequences()`` is what :class:`~pytest_reliability.testing.IdempotencyChecker` and the
``idempotency_check`` fixture draw from: a few distinct requests and a list of deliveries mixing
duplicates, lost acknowledgements, crashes between effect and acknowledgement, retries after a
failure and concurrent deliveries. Shrinking removes steps and simplifies kinds toward plain
``deliver``, so a failure reads as the shortest script that breaks the handler.

``fault_schedules(targets)`` draws :class:`~pytest_reliability.ops.chaos_engine.FaultSchedule`
values for ``chaos.apply``: up to ``max_faults`` faults, each at a declared
:class:`~pytest_reliability.ops.chaos_engine.FaultTarget` in one of the kinds it allows.
Shrinking heads for "no fault" (fewer faults), "first call" (``call_indexes``) and "smallest
latency" (``latencies``), so a failure reads as the few faults that must coincide.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from pytest_reliability.errors import FaultScheduleError
from pytest_reliability.idempotency._model import KEY_MAX_LENGTH
from pytest_reliability.ops.chaos_engine import FaultSchedule, FaultTarget, ScheduledFault
from pytest_reliability.testing._sequences import DELIVERY_KINDS, Delivery, RequestSequence

__all__ = [
    "call_indexes",
    "deliveries",
    "fault_schedules",
    "idempotency_keys",
    "latencies",
    "payloads",
    "request_sequences",
    "scheduled_faults",
]

_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def idempotency_keys(*, max_size: int = KEY_MAX_LENGTH) -> st.SearchStrategy[str]:
    """Valid idempotency keys: 1 to ``max_size`` printable ASCII characters."""
    return st.text(alphabet=_PRINTABLE, min_size=1, max_size=max_size)


@functools.cache
def payloads() -> st.SearchStrategy[Any]:
    """Small JSON request bodies (objects of scalars, as APIs and webhooks send)."""
    scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=12)
    return st.dictionaries(
        st.text(alphabet="abcdefgh", min_size=1, max_size=6), scalars, max_size=4
    )


# Strategies are values: building them once per shape keeps drawing cheap inside composites.
@functools.cache
def deliveries(
    requests: int, *, max_copies: int = 4, kinds: tuple[str, ...] = DELIVERY_KINDS
) -> st.SearchStrategy[Delivery]:
    """One delivery of a request numbered below ``requests``, in one of ``kinds``."""
    allowed = [k for k in DELIVERY_KINDS if k in kinds]
    return st.builds(
        Delivery,
        request=st.integers(0, requests - 1),
        kind=st.sampled_from(allowed),
        copies=st.integers(2, max(2, max_copies)),
    )


@st.composite
def request_sequences(
    draw: st.DrawFn,
    *,
    max_requests: int = 3,
    max_steps: int = 8,
    max_copies: int = 4,
    bodies: st.SearchStrategy[Any] | None = None,
    kinds: tuple[str, ...] = DELIVERY_KINDS,
) -> RequestSequence:
    """Up to ``max_requests`` distinct requests and up to ``max_steps`` deliveries of them.

    Every sequence has at least one duplicate delivery, since a sequence without one cannot
    show a violation.
    """
    body = bodies if bodies is not None else payloads()
    drawn = draw(st.lists(body, min_size=1, max_size=max_requests))
    steps = draw(
        st.lists(
            deliveries(len(drawn), max_copies=max_copies, kinds=kinds),
            min_size=1,
            max_size=max(2, max_steps),
        )
    )
    repeats = {"concurrent", "fail_then_retry"}
    if len({d.request for d in steps}) == len(steps) and not repeats & {d.kind for d in steps}:
        steps.append(Delivery(steps[0].request))
    return RequestSequence(tuple(drawn), tuple(steps))


# -- property-based chaos --------------------------------------------------------------------------


@functools.cache
def call_indexes(max_call: int = 4) -> st.SearchStrategy[int]:
    """The call a fault fires on: 1 to ``max_call``, shrinking toward the first call."""
    if max_call < 1:
        raise FaultScheduleError(f"max_call must be 1 or more, not {max_call}")
    return st.integers(1, max_call)


@functools.cache
def latencies(max_seconds: float = 0.01) -> st.SearchStrategy[float]:
    """Delays of 0 to ``max_seconds`` in whole milliseconds, shrinking toward no delay."""
    if not 0 <= max_seconds <= 60:
        raise FaultScheduleError(f"max_seconds must be within [0, 60], not {max_seconds!r}")
    return st.integers(0, int(max_seconds * 1000)).map(lambda ms: ms / 1000)


@st.composite
def _one_fault(draw: st.DrawFn, target: FaultTarget, kinds: tuple[str, ...]) -> ScheduledFault:
    kind = draw(st.sampled_from(kinds))
    on_call = draw(call_indexes(target.max_call))
    error = None
    if kind in ("exception", "timeout") and target.errors:
        error = draw(st.sampled_from(target.errors))
    value = draw(st.sampled_from(target.values)) if kind == "return_value" else None
    seconds = draw(latencies(target.max_seconds)) if kind in ("latency", "timeout") else 0.0
    return ScheduledFault(target.name, kind, on_call, error=error, value=value, seconds=seconds)


def scheduled_faults(
    target: FaultTarget, *, kinds: tuple[str, ...] | None = None
) -> st.SearchStrategy[ScheduledFault]:
    """One fault at ``target``, in a kind it allows (and, if given, one of ``kinds``)."""
    allowed = tuple(k for k in target.kinds if kinds is None or k in kinds)
    if not allowed:
        raise FaultScheduleError(
            f"fault target {target.name!r} allows none of the kinds {', '.join(kinds or ())}"
        )
    return _one_fault(target, allowed)


def fault_schedules(
    targets: Iterable[FaultTarget],
    *,
    kinds: tuple[str, ...] | None = None,
    max_faults: int = 3,
    min_faults: int = 0,
) -> st.SearchStrategy[FaultSchedule]:
    """Schedules of ``min_faults`` to ``max_faults`` faults at ``targets``.

    Each fault is at one of ``targets`` in a kind that target allows (narrowed to ``kinds`` when
    given). Shrinks toward the empty schedule, the first call and the smallest latency.
    """
    declared = list(targets)
    if not declared:
        raise FaultScheduleError("fault_schedules needs at least one FaultTarget")
    if not 0 <= min_faults <= max_faults:
        raise FaultScheduleError(
            f"need 0 <= min_faults <= max_faults, not {min_faults} and {max_faults}"
        )
    usable = [t for t in declared if kinds is None or set(t.kinds) & set(kinds)]
    if not usable:
        raise FaultScheduleError(
            f"no target allows any of the kinds {', '.join(kinds or ())}: "
            + ", ".join(f"{t.name} allows {', '.join(t.kinds)}" for t in declared)
        )
    one = st.one_of([scheduled_faults(t, kinds=kinds) for t in usable])
    # Two faults may share a call (a latency then a timeout): both fire, the later-armed first.
    # Not drawing them unique also spares Hypothesis rejected draws: about a quarter faster.
    return st.lists(one, min_size=min_faults, max_size=max_faults).map(FaultSchedule)
