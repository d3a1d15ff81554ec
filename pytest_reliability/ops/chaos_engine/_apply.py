"""Applying a fault schedule through the engine, and what the applications of one test add up to.

:meth:`ChaosEngine.apply <pytest_reliability.ops.chaos_engine.ChaosEngine.apply>` checks the
whole schedule first (every target resolvable and patchable, every kind allowed where it is,
every exception class importable), so a bad schedule raises
:class:`~pytest_reliability.errors.FaultScheduleError` with nothing armed. Entering the returned
:class:`AppliedSchedule` arms each fault through the engine's own methods (its kinds, its
patching); leaving it removes them. Each application arms fresh faults, so call counters start
at zero for every Hypothesis example even though the ``chaos`` fixture lives for the whole test.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

from pytest_reliability.errors import ConfigurationError, FaultScheduleError
from pytest_reliability.ops.chaos_engine import _patch as _chaos_patch
from pytest_reliability.ops.chaos_engine._fault import Fault
from pytest_reliability.ops.chaos_engine._schedule import (
    CALL_FAULT_KINDS,
    CONNECTION_FAULT_KINDS,
    DATABASE_FAULT_KINDS,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)

if TYPE_CHECKING:
    from pytest_reliability.ops.chaos_engine._engine import ChaosEngine

__all__ = ["AppliedSchedule", "HistoryEvent", "PropertyStats", "prepare"]

Arm = Callable[[], Fault]


@final
@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One line of an example's history: a call at a faulted target, or a note from the test."""

    step: int
    target: str
    text: str

    def __str__(self) -> str:
        return f"{self.step}. {self.target}: {self.text}"


def _error_class(name: str, index: int) -> type[BaseException]:
    try:
        owner, attr = _chaos_patch.resolve(name)
    except ConfigurationError as exc:
        raise FaultScheduleError(f"fault {index}: error {name!r}: {exc}", index=index) from None
    found = getattr(owner, attr)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise FaultScheduleError(
            f"fault {index}: error {name!r} is not an exception class", index=index
        )
    return found


def _declared(targets: Iterable[FaultTarget] | Mapping[str, FaultTarget]) -> dict[str, FaultTarget]:
    items = targets.values() if isinstance(targets, Mapping) else targets
    found: dict[str, FaultTarget] = {}
    for target in items:
        if not isinstance(target, FaultTarget):
            raise FaultScheduleError(f"targets must be FaultTarget values, not {target!r}")
        found[target.name] = target
    return found


def _address(fault: ScheduledFault, declared: FaultTarget | None, index: int) -> tuple[str, int]:
    if declared is not None and declared.address is not None:
        return declared.address
    host, sep, port = fault.target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FaultScheduleError(
            f"fault {index}: connection_refused at {fault.target!r} needs a HOST:PORT target "
            "or a FaultTarget with address=(host, port)",
            index=index,
        )
    return host, int(port)


def _plan(
    engine: ChaosEngine, fault: ScheduledFault, declared: FaultTarget | None, index: int
) -> Arm:
    """Check one fault against its target; return the step that arms it through the engine."""
    kind = fault.kind
    if declared is not None and kind not in declared.kinds:
        raise FaultScheduleError(
            f"fault {index}: kind {kind!r} is not allowed at target {fault.target!r} "
            f"(allowed: {', '.join(declared.kinds)})",
            index=index,
        )
    on_call = fault.on_call
    if kind in DATABASE_FAULT_KINDS:
        sa_engine = declared.engine if declared is not None else None
        if sa_engine is None or not hasattr(sa_engine, "dialect"):
            raise FaultScheduleError(
                f"fault {index}: {kind} at {fault.target!r} needs a FaultTarget bound to a "
                "SQLAlchemy engine (FaultTarget(...).bind(engine))",
                index=index,
            )
        db_kind = kind.removeprefix("database_")
        return lambda: engine.database_error(sa_engine, kind=db_kind, on_call=on_call)
    if kind in CONNECTION_FAULT_KINDS:
        host, port = _address(fault, declared, index)
        return lambda: engine.refuse_connections(host, port, on_call=on_call)
    assert kind in CALL_FAULT_KINDS  # the schedule's own check
    path = (declared.path or declared.name) if declared is not None else fault.target
    try:
        _chaos_patch.resolve(engine._dotted(path))
    except ConfigurationError as exc:
        raise FaultScheduleError(f"fault {index}: {exc}", index=index) from None
    if kind == "exception":
        error = _error_class(fault.raises or "", index)
        return lambda: engine.raise_exception(path, error, on_call=on_call)
    if kind == "timeout":
        error = _error_class(fault.raises or "", index)
        after = fault.seconds
        return lambda: engine.timeout(path, after=after, exc=error, on_call=on_call)
    if kind == "latency":
        seconds = fault.seconds
        return lambda: engine.latency(path, seconds, on_call=on_call)
    value = fault.value
    return lambda: engine.return_value(path, value, on_call=on_call)


def prepare(
    engine: ChaosEngine,
    schedule: FaultSchedule,
    targets: Iterable[FaultTarget] | Mapping[str, FaultTarget],
) -> list[Arm]:
    """Check every fault of ``schedule``; return the steps that arm them (nothing armed yet)."""
    if not isinstance(schedule, FaultSchedule):
        raise FaultScheduleError(f"apply takes a FaultSchedule, not {type(schedule).__name__}")
    declared = _declared(targets)
    return [_plan(engine, f, declared.get(f.target), i) for i, f in enumerate(schedule)]


def _build_context() -> Any:
    """Return Hypothesis' context of the example running in this thread, or ``None``."""
    if "hypothesis" not in sys.modules:  # not imported: not inside @given either
        return None
    from hypothesis.control import _current_build_context

    return _current_build_context.value


def _final_example() -> bool:
    """Whether Hypothesis is replaying its minimal failing example (or an explicit one)."""
    context = _build_context()
    return bool(context is not None and context.is_final)


def example_cleanup() -> Callable[[Callable[[], None]], None] | None:
    """Inside a Hypothesis example, return the function that runs a step when it ends."""
    if _build_context() is None:
        return None
    from hypothesis.control import cleanup

    return cleanup


@final
class PropertyStats:
    """What the schedules applied in one test added up to (the report's ``chaos.property``)."""

    __slots__ = ("_lock", "distinct", "examples", "final", "fired_by_kind", "unfired_by_kind")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.examples = 0
        """How many schedules were applied (one per Hypothesis example)."""
        self.distinct: set[FaultSchedule] = set()
        self.fired_by_kind: Counter[str] = Counter()
        self.unfired_by_kind: Counter[str] = Counter()
        self.final: AppliedSchedule | None = None
        """The schedule of Hypothesis' final replay of a failure: the shrunk one."""

    def add(self, applied: AppliedSchedule) -> None:
        """Count one finished application."""
        with self._lock:
            self.examples += 1
            self.distinct.add(applied.schedule)
            for scheduled, fault in zip(applied.schedule, applied.faults, strict=True):
                counter = self.fired_by_kind if fault.fired else self.unfired_by_kind
                counter[scheduled.kind] += 1

    def as_facts(self, *, failed: bool) -> dict[str, Any]:
        """Return the ``chaos.property`` section; the shrunk schedule only for a failure.

        The test ``failed`` (as the fixture saw it), or Hypothesis' final replay raised inside
        the ``with`` block.
        """
        with self._lock:
            out: dict[str, Any] = {
                "examples": self.examples,
                "distinct_schedules": len(self.distinct),
                "fired_by_kind": dict(sorted(self.fired_by_kind.items())),
                "unfired_by_kind": dict(sorted(self.unfired_by_kind.items())),
            }
            final = self.final
        if final is not None and (failed or final.raised):
            out["shrunk"] = {
                "json": final.schedule.to_json(),
                "python": final.schedule.to_python(),
                "unfired": [i for i, f in enumerate(final.faults) if not f.fired],
            }
        return out


@final
class AppliedSchedule:
    """A schedule armed for one ``with`` block; what :meth:`ChaosEngine.apply` returns.

    ``faults`` are the engine's records of the armed faults (in schedule order, with ``fired``
    counts), ``history`` every call at a faulted target and every :meth:`note`, in order.
    :meth:`unfired` names the scheduled faults that never fired (their call never came). In
    Hypothesis' final replay of a failure, leaving the block adds :meth:`describe` as a note.
    """

    __slots__ = (
        "_arms",
        "_engine",
        "_entered",
        "_lock",
        "_stats",
        "faults",
        "final",
        "history",
        "raised",
        "schedule",
    )

    def __init__(
        self, engine: ChaosEngine, schedule: FaultSchedule, arms: list[Arm], stats: PropertyStats
    ) -> None:
        self._engine = engine
        self._arms = arms
        self._stats = stats
        self._lock = threading.Lock()
        self._entered = False
        self.schedule = schedule
        self.faults: tuple[Fault, ...] = ()
        self.history: list[HistoryEvent] = []
        self.final = False
        """Whether this is Hypothesis' final replay of a failing (shrunk) example."""
        self.raised = False
        """Whether the ``with`` block ended with an exception."""

    @property
    def seed(self) -> int:
        """The engine's seed (the run's seed under the ``chaos`` fixture)."""
        return self._engine.seed

    def note(self, text: str, *, target: str = "test") -> None:
        """Add a line of the test's own to the history (an effect, an acknowledgement, ...)."""
        with self._lock:
            self.history.append(HistoryEvent(len(self.history) + 1, target, str(text)))

    def _observe(self, fault: Fault, call: int, fired: bool) -> None:
        what = f"call {call}: {fault.kind} fault fired" if fired else f"call {call}"
        self.note(what, target=fault.target)

    def unfired(self) -> tuple[ScheduledFault, ...]:
        """The scheduled faults that did not fire while the schedule was applied."""
        return tuple(s for s, f in zip(self.schedule, self.faults, strict=False) if not f.fired)

    def describe(self) -> str:
        """Return the schedule, which faults fired, the history and the seed, for a message."""
        fired = {i for i, f in enumerate(self.faults) if f.fired}
        lines = ["schedule (Python; paste into a regression test):", self.schedule.to_python()]
        for i, scheduled in enumerate(self.schedule):
            state = "fired" if i in fired else "never fired"
            lines.append(f"  fault {i} ({scheduled.kind} at {scheduled.target}): {state}")
        lines.append("history:")
        with self._lock:
            lines += [f"  {event}" for event in self.history] or ["  (no call reached a target)"]
        lines.append(f"seed: {self.seed} (replay: pytest --reliability-seed={self.seed})")
        return "\n".join(lines)

    def __enter__(self) -> AppliedSchedule:
        if self._entered:
            raise FaultScheduleError(
                "an applied schedule arms once: call chaos.apply(schedule) again for a new block"
            )
        self._entered = True
        self.final = _final_example()
        armed: list[Fault] = []
        try:
            with self._engine._collecting(armed):
                for arm in self._arms:
                    arm()
        except BaseException:
            self.faults = tuple(armed)
            self._engine._disarm(armed)
            raise
        for fault in armed:
            fault.observer = self._observe
        self.faults = tuple(armed)
        self._engine._activate(self)
        return self

    def disarm(self) -> None:
        """Remove this schedule's faults now (leaving the ``with`` block does it too)."""
        if self._engine._deactivate(self):
            self._engine._disarm(list(self.faults))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.raised = exc is not None
        try:
            self.disarm()
        finally:
            self._stats.add(self)
            if self.final:
                self._stats.final = self
                # Hypothesis replays only a failing example as final: whatever assertion fails
                # (an invariant helper or a plain assert), its report carries the history.
                from hypothesis import note

                note(self.describe())
