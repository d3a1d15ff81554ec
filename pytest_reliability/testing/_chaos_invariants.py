"""Invariants of property-based chaos: what must hold whatever faults a schedule fires.

Each helper takes the :class:`~pytest_reliability.ops.chaos_engine.AppliedSchedule` of the
example (what ``chaos.apply(schedule)`` returned, or ``None`` outside a schedule) and raises
:class:`~pytest_reliability.errors.ChaosInvariantViolated` when the invariant fails. The message
names the invariant and what broke it, then the schedule as Python text (the shrunk one, once
Hypothesis has shrunk), which faults fired, the history of calls at faulted targets and the
test's own notes, and the seed that replays the run. In Hypothesis' final replay that
description comes as a Hypothesis note, which the run adds itself when its block ends.

* :func:`assert_exactly_once`: one effect per key, exactly one when a delivery was acknowledged,
  replayed responses equal (the model of the idempotency checker).
* :func:`assert_no_acknowledged_write_lost`: every acknowledged write reads back as written.
* :func:`assert_kill_switch_engaged`: a switch whose store failed reads engaged.
* :func:`assert_not_ready`: readiness answers not-ready while a dependency is failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_reliability.errors import ChaosInvariantViolated
from pytest_reliability.testing._checker import exactly_once_violation

if TYPE_CHECKING:
    from pytest_reliability.ops.chaos_engine import AppliedSchedule

__all__ = [
    "assert_exactly_once",
    "assert_kill_switch_engaged",
    "assert_no_acknowledged_write_lost",
    "assert_not_ready",
]

_MISSING = object()


def _violated(run: AppliedSchedule | None, invariant: str, problem: str) -> NoReturn:
    lines = [f"chaos invariant violated: {invariant}: {problem}"]
    if run is not None and run.final:
        # Hypothesis' final replay: the run adds the same text as a note when its block ends.
        lines.append("(the schedule, its faults, the history and the seed: in the notes below)")
    elif run is not None:
        lines.append(run.describe())
    raise ChaosInvariantViolated(
        "\n".join(lines), schedule=run.schedule if run is not None else None
    )


def assert_exactly_once(
    run: AppliedSchedule | None,
    *,
    effects: Mapping[str, int],
    acknowledged: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """Every key had at most one effect, exactly one if acknowledged, and equal responses.

    ``effects`` maps each key to how many effects it had (charges, emails, rows);
    ``acknowledged`` maps a key to the responses its client received (a key missing means
    none). Keys are checked in sorted order, so the first violation reported is stable.
    """
    acked = acknowledged or {}
    for key in sorted({*effects, *acked}, key=str):
        problem = exactly_once_violation(int(effects.get(key, 0)), list(acked.get(key, ())))
        if problem is not None:
            _violated(run, "exactly one effect per key", f"key {key!r}: {problem}")


def assert_no_acknowledged_write_lost(
    run: AppliedSchedule | None,
    acknowledged: Mapping[str, Any],
    read: Callable[[str], Any],
) -> None:
    """Every write the client saw acknowledged reads back with the value written.

    ``acknowledged`` maps keys to the values whose writes were acknowledged; ``read(key)``
    reads the store after the faults (``KeyError`` or ``LookupError`` means absent). A read
    that raises anything else is a violation too: the write cannot be shown to have survived.
    """
    for key in sorted(acknowledged, key=str):
        try:
            found = read(key)
        except LookupError:
            found = _MISSING
        except Exception as exc:
            _violated(
                run,
                "no acknowledged write lost",
                f"reading {key!r} back raised {type(exc).__name__}: {exc}",
            )
        if found is _MISSING:
            _violated(run, "no acknowledged write lost", f"{key!r} was acknowledged, then lost")
        if found != acknowledged[key]:
            _violated(
                run,
                "no acknowledged write lost",
                f"{key!r} was acknowledged as {acknowledged[key]!r} but reads {found!r}",
            )


def assert_kill_switch_engaged(run: AppliedSchedule | None, switches: Any, switch: str) -> None:
    """``switches.is_engaged(switch)`` is true: a switch whose store failed is not "released".

    ``switches`` is a :class:`~pytest_reliability.ops.kill_switch.KillSwitches` (or anything
    with ``is_engaged``). Call it after the store failed (and after the staleness bound, for a
    switch set that had read the store before): unknown state must read engaged. A read that
    raises is a violation: a guard would crash instead of refusing.
    """
    try:
        engaged = switches.is_engaged(switch)
    except Exception as exc:
        _violated(
            run,
            "kill switch engaged after its store failed",
            f"reading {switch} raised {type(exc).__name__}: {exc}",
        )
    if engaged is not True:
        _violated(
            run,
            "kill switch engaged after its store failed",
            f"{switch} read {engaged!r} while its store was failing",
        )


def assert_not_ready(run: AppliedSchedule | None, readiness: Any) -> None:
    """Readiness says not-ready: ``readiness`` is a result with ``ready`` or a callable giving one.

    Typically ``lambda: run_readiness_gates(session)`` while a database fault fires. A readiness
    check that raises is a violation: the orchestrator gets no answer instead of "not ready".
    """
    try:
        result = readiness() if callable(readiness) else readiness
    except Exception as exc:
        _violated(
            run,
            "not ready while a dependency fails",
            f"the readiness check raised {type(exc).__name__}: {exc}",
        )
    ready = getattr(result, "ready", result)
    if ready is not False:
        failed = getattr(result, "gates", ())
        _violated(
            run,
            "not ready while a dependency fails",
            f"readiness answered ready={ready!r} (gates: {list(failed)!r})",
        )
