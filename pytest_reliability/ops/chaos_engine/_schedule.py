"""Fault schedules as data: which faults fire where, on which call, as JSON and as Python text.

A :class:`FaultSchedule` is an immutable list of :class:`ScheduledFault` values. Each names a
target (a dotted path, an alias, or a :class:`FaultTarget` declared for the test), one of the
engine's fault kinds and the call of that target it fires on. The schedule prints as Python that
rebuilds it (``repr`` and :meth:`FaultSchedule.to_python`), so a failing schedule pastes into a
regression test, and serialises to versioned JSON (:meth:`FaultSchedule.to_json`,
:meth:`FaultSchedule.load`), so a nightly run can hand one to a developer as a file.

:class:`FaultTarget` declares a place a schedule may fault and which kinds make sense there; the
strategies in :mod:`pytest_reliability.strategies` draw schedules from such declarations and
:meth:`ChaosEngine.apply <pytest_reliability.ops.chaos_engine.ChaosEngine.apply>` arms them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

from pytest_reliability.errors import FaultScheduleError, ScheduleVersionError

__all__ = [
    "CALL_FAULT_KINDS",
    "CONNECTION_FAULT_KINDS",
    "DATABASE_FAULT_KINDS",
    "FAULT_KINDS",
    "SCHEDULE_VERSION",
    "FaultSchedule",
    "FaultTarget",
    "ScheduledFault",
]

SCHEDULE_VERSION: Final = 1
"""The schema version of a schedule's JSON form; :meth:`FaultSchedule.from_json` refuses others."""

CALL_FAULT_KINDS: Final = ("exception", "return_value", "latency", "timeout")
"""Kinds that patch a callable (a dotted path): the engine's ``raise_exception``, ``return_value``,
``latency`` and ``timeout``."""
DATABASE_FAULT_KINDS: Final = ("database_operational", "database_disconnect")
"""Kinds that fail a SQLAlchemy engine's statements (the engine's ``database_error``)."""
CONNECTION_FAULT_KINDS: Final = ("connection_refused",)
"""Kinds that refuse TCP connections to a host and port (the engine's ``refuse_connections``)."""
FAULT_KINDS: Final = (*CALL_FAULT_KINDS, *DATABASE_FAULT_KINDS, *CONNECTION_FAULT_KINDS)
"""Every kind a schedule may name, as the engine records it in a fault's ``kind``."""

MAX_SECONDS: Final = 60.0
"""The longest latency or timeout a schedule may hold: every wait is bounded."""

_ERROR_KINDS = ("exception", "timeout")
_SECONDS_KINDS = ("latency", "timeout")
_DEFAULT_ERRORS = {
    "exception": "pytest_reliability.errors.InjectedFault",
    "timeout": "builtins.TimeoutError",
}
_ERROR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_FAULT_KEYS = frozenset({"target", "kind", "on_call", "error", "value", "seconds"})


def _error_name(error: object, index: int | None) -> str:
    if isinstance(error, type) and issubclass(error, BaseException):
        module = "builtins" if error.__module__ == "builtins" else error.__module__
        return f"{module}.{error.__qualname__}"
    if isinstance(error, str) and _ERROR_NAME.match(error):
        return error
    raise FaultScheduleError(
        f"a fault's error must be an exception class or its dotted name "
        f"(builtins.TimeoutError), not {error!r}",
        index=index,
    )


def _check_json_value(value: object, where: str, index: int | None) -> None:
    """Refuse what JSON would not give back equal: tuples, non-string keys, NaN, objects."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FaultScheduleError(f"{where}: {value!r} has no JSON form", index=index)
        return
    if isinstance(value, list):
        for item in value:
            _check_json_value(item, where, index)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FaultScheduleError(f"{where}: object key {key!r} is not text", index=index)
            _check_json_value(item, where, index)
        return
    raise FaultScheduleError(
        f"{where}: {type(value).__name__} is not a JSON value (None, bool, int, float, str, "
        "list or dict)",
        index=index,
    )


@final
@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ScheduledFault:
    """One fault of a schedule: ``kind`` at ``target``, firing on its ``on_call``-th call only.

    * ``error``: the exception class (or its dotted name) an ``exception`` or ``timeout`` fault
      raises; default :class:`~pytest_reliability.errors.InjectedFault` and ``TimeoutError``.
    * ``value``: what a ``return_value`` fault returns (a JSON value, so the schedule has a
      JSON form).
    * ``seconds``: a ``latency`` fault's delay, a ``timeout`` fault's wait before it raises.

    ``on_call`` counts calls of the target from the moment the schedule is applied (for a
    database fault, statements; for a refused connection, connection attempts).
    """

    target: str
    kind: str
    on_call: int = 1
    error: str | None = None
    value: Any = None
    seconds: float = 0.0
    index: int | None = field(default=None, compare=False, hash=False)
    """Where the fault sat in the file it was read from (error messages only)."""

    def __post_init__(self) -> None:
        at = self.index
        if (
            not isinstance(self.target, str)
            or not self.target
            or self.target.strip() != (self.target)
        ):
            raise FaultScheduleError(
                f"a fault's target must be a non-empty name, not {self.target!r}", index=at
            )
        if self.kind not in FAULT_KINDS:
            raise FaultScheduleError(
                f"fault kind {self.kind!r} at {self.target!r} is not one of "
                f"{', '.join(FAULT_KINDS)}",
                index=at,
            )
        if isinstance(self.on_call, bool) or not isinstance(self.on_call, int) or self.on_call < 1:
            raise FaultScheduleError(
                f"on_call must be an integer of 1 or more, not {self.on_call!r}", index=at
            )
        if self.error is not None:
            if self.kind not in _ERROR_KINDS:
                raise FaultScheduleError(
                    f"a {self.kind} fault raises nothing: error={self.error!r} is not allowed",
                    index=at,
                )
            object.__setattr__(self, "error", _error_name(self.error, at))
        if self.value is not None:
            if self.kind != "return_value":
                raise FaultScheduleError(
                    f"only a return_value fault returns a value, not a {self.kind} fault",
                    index=at,
                )
            _check_json_value(self.value, f"the value of the fault at {self.target!r}", at)
        seconds = self.seconds
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise FaultScheduleError(f"seconds must be a number, not {seconds!r}", index=at)
        if seconds and self.kind not in _SECONDS_KINDS:
            raise FaultScheduleError(
                f"a {self.kind} fault takes no seconds (only latency and timeout do)", index=at
            )
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
            raise FaultScheduleError(
                f"seconds must be within [0, {MAX_SECONDS:g}], not {seconds!r}", index=at
            )
        object.__setattr__(self, "seconds", float(seconds))

    def _key(self) -> tuple[Any, ...]:
        # Equal as their JSON is equal: True, 1 and 1.0 are different values to return, and a
        # list value (unhashable) still hashes. Only the value needs encoding.
        value = None if self.value is None else json.dumps(self.value, sort_keys=True)
        return (self.target, self.kind, self.on_call, self.error, self.seconds, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScheduledFault):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def raises(self) -> str | None:
        """The dotted name of the exception the fault raises (its default when none was set)."""
        return self.error or _DEFAULT_ERRORS.get(self.kind)

    def to_json(self) -> dict[str, Any]:
        """Return the fault as a JSON object (parameters left at their default are omitted)."""
        out: dict[str, Any] = {"target": self.target, "kind": self.kind, "on_call": self.on_call}
        if self.error is not None:
            out["error"] = self.error
        if self.value is not None:
            out["value"] = self.value
        if self.seconds:
            out["seconds"] = self.seconds
        return out

    @classmethod
    def from_json(cls, data: object, *, index: int | None = None) -> ScheduledFault:
        """Rebuild a fault from :meth:`to_json`'s form; :class:`FaultScheduleError` if malformed."""
        if not isinstance(data, Mapping):
            raise FaultScheduleError(
                f"fault {index}: expected a JSON object, not {type(data).__name__}", index=index
            )
        unknown = sorted(set(map(str, data)) - _FAULT_KEYS)
        if unknown:
            raise FaultScheduleError(
                f"fault {index}: unknown field(s) {', '.join(unknown)}", index=index
            )
        missing = [k for k in ("target", "kind") if k not in data]
        if missing:
            raise FaultScheduleError(
                f"fault {index}: missing field(s) {', '.join(missing)}", index=index
            )
        return cls(
            target=data["target"],
            kind=data["kind"],
            on_call=data.get("on_call", 1),
            error=data.get("error"),
            value=data.get("value"),
            seconds=data.get("seconds", 0.0),
            index=index,
        )

    def __repr__(self) -> str:
        parts = [repr(self.target), repr(self.kind), f"on_call={self.on_call}"]
        if self.error is not None:
            parts.append(f"error={self.error!r}")
        if self.value is not None:
            parts.append(f"value={self.value!r}")
        if self.seconds:
            parts.append(f"seconds={self.seconds!r}")
        return f"ScheduledFault({', '.join(parts)})"


@final
class FaultSchedule:
    """An immutable, ordered list of :class:`ScheduledFault`; empty means "no fault".

    ``repr(schedule)`` (and :meth:`to_python`) is Python that rebuilds it, given
    ``from pytest_reliability.ops.chaos_engine import FaultSchedule, ScheduledFault``.
    """

    __slots__ = ("_faults",)

    def __init__(self, faults: Iterable[ScheduledFault] = ()) -> None:
        found = tuple(faults)
        for i, fault in enumerate(found):
            if not isinstance(fault, ScheduledFault):
                raise FaultScheduleError(
                    f"fault {i}: expected a ScheduledFault, not {type(fault).__name__}", index=i
                )
        self._faults = found

    @property
    def faults(self) -> tuple[ScheduledFault, ...]:
        """The faults, in the order they are armed."""
        return self._faults

    def __iter__(self) -> Iterator[ScheduledFault]:
        return iter(self._faults)

    def __len__(self) -> int:
        return len(self._faults)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaultSchedule):
            return NotImplemented
        return self._faults == other._faults

    def __hash__(self) -> int:
        return hash(self._faults)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_faults"):
            raise AttributeError("a FaultSchedule is immutable")
        object.__setattr__(self, name, value)

    def kinds(self) -> tuple[str, ...]:
        """The kind of each fault, in order."""
        return tuple(f.kind for f in self._faults)

    # -- the two text forms -----------------------------------------------------------------------

    def to_python(self) -> str:
        """Return Python text that rebuilds the schedule (one fault a line)."""
        if not self._faults:
            return "FaultSchedule([])"
        lines = "".join(f"    {fault!r},\n" for fault in self._faults)
        return f"FaultSchedule([\n{lines}])"

    __repr__ = to_python

    def to_json(self) -> dict[str, Any]:
        """Return the versioned JSON object: ``{"schedule_version": 1, "faults": [...]}``."""
        return {
            "schedule_version": SCHEDULE_VERSION,
            "faults": [fault.to_json() for fault in self._faults],
        }

    def dumps(self) -> str:
        """Return :meth:`to_json` as compact JSON with sorted keys (equal schedules, equal text)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, data: object) -> FaultSchedule:
        """Rebuild a schedule from :meth:`to_json`'s form.

        Raises :class:`ScheduleVersionError` for another (or a missing) ``schedule_version`` and
        :class:`FaultScheduleError` for anything else malformed, naming the offending fault.
        """
        if not isinstance(data, Mapping):
            raise FaultScheduleError(
                f"a fault schedule is a JSON object, not {type(data).__name__}"
            )
        version = data.get("schedule_version")
        if isinstance(version, bool) or version != SCHEDULE_VERSION:
            raise ScheduleVersionError(
                f"fault schedule version {version!r} is not supported: this version of "
                f"pytest-reliability reads schedule_version {SCHEDULE_VERSION}",
                found=version,
                expected=SCHEDULE_VERSION,
            )
        unknown = sorted(set(map(str, data)) - {"schedule_version", "faults"})
        if unknown:
            raise FaultScheduleError(f"fault schedule: unknown field(s) {', '.join(unknown)}")
        faults = data.get("faults")
        if not isinstance(faults, list):
            raise FaultScheduleError("fault schedule: 'faults' must be a JSON array")
        return cls(ScheduledFault.from_json(item, index=i) for i, item in enumerate(faults))

    @classmethod
    def loads(cls, text: str | bytes) -> FaultSchedule:
        """Parse JSON text (see :meth:`from_json`); bad JSON is a :class:`FaultScheduleError`."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:  # JSONDecodeError, bad UTF-8, not text at all
            raise FaultScheduleError(f"fault schedule is not JSON: {exc}") from None
        return cls.from_json(data)

    @classmethod
    def load(cls, path: str | Path) -> FaultSchedule:
        """Read a schedule file written by :meth:`save`; unreadable files name the path."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise FaultScheduleError(f"cannot read fault schedule {path}: {exc}") from None
        try:
            return cls.loads(raw)
        except FaultScheduleError as exc:
            exc.args = (f"{path}: {exc}",)
            raise

    def save(self, path: str | Path) -> None:
        """Write the schedule as indented JSON to ``path``."""
        text = json.dumps(self.to_json(), indent=2, sort_keys=True, allow_nan=False)
        Path(path).write_text(text + "\n", encoding="utf-8")


_DEFAULT_VALUES: tuple[Any, ...] = (None,)


@final
@dataclass(frozen=True, slots=True)
class FaultTarget:
    """A place schedules may fault, and the fault kinds that make sense there.

    * ``name``: what schedules call it. For call kinds it is also the dotted path (or an alias
      from ``pytest_reliability_chaos_targets``) unless ``path`` names another.
    * ``kinds``: the allowed kinds (:data:`FAULT_KINDS`); ``apply`` refuses any other.
    * ``engine``: the SQLAlchemy engine a database kind fails (may be left out where schedules
      are only drawn, and given to ``apply`` with :meth:`bind`).
    * ``address``: ``(host, port)`` a ``connection_refused`` fault refuses.
    * What strategies draw: ``errors`` (exception classes or dotted names) for ``exception`` and
      ``timeout``, ``values`` (JSON values) for ``return_value``, latencies up to
      ``max_seconds``, call indexes up to ``max_call``.
    """

    name: str
    kinds: tuple[str, ...]
    path: str | None = None
    engine: Any = field(default=None, compare=False)
    address: tuple[str, int] | None = None
    errors: tuple[Any, ...] = ()
    values: tuple[Any, ...] = _DEFAULT_VALUES
    max_seconds: float = 0.01
    max_call: int = 4

    def __post_init__(self) -> None:
        where = f"fault target {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name.strip() != self.name:
            raise FaultScheduleError(f"a fault target's name must be non-empty, not {self.name!r}")
        kinds = tuple(self.kinds)
        if not kinds:
            raise FaultScheduleError(f"{where} allows no fault kind")
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise FaultScheduleError(
                f"{where}: unknown fault kind(s) {', '.join(map(repr, bad))} "
                f"(known: {', '.join(FAULT_KINDS)})"
            )
        families = {
            "call": set(kinds) & set(CALL_FAULT_KINDS),
            "database": set(kinds) & set(DATABASE_FAULT_KINDS),
            "connection": set(kinds) & set(CONNECTION_FAULT_KINDS),
        }
        if sum(bool(v) for v in families.values()) > 1:
            raise FaultScheduleError(
                f"{where} mixes call, database and connection kinds: declare one target each"
            )
        if families["connection"] and self.address is None:
            raise FaultScheduleError(f"{where}: connection_refused needs address=(host, port)")
        if self.address is not None:
            host, port = self.address
            if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
                raise FaultScheduleError(f"{where}: address must be (host, port)")
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "errors", tuple(_error_name(e, None) for e in self.errors))
        for value in self.values:
            _check_json_value(value, f"{where}: a value", None)
        object.__setattr__(self, "values", tuple(self.values) or _DEFAULT_VALUES)
        if not (math.isfinite(self.max_seconds) and 0 <= self.max_seconds <= MAX_SECONDS):
            raise FaultScheduleError(f"{where}: max_seconds must be within [0, {MAX_SECONDS:g}]")
        if isinstance(self.max_call, bool) or not isinstance(self.max_call, int):
            raise FaultScheduleError(f"{where}: max_call must be an integer")
        if self.max_call < 1:
            raise FaultScheduleError(f"{where}: max_call must be 1 or more, not {self.max_call}")

    def bind(self, engine: Any) -> FaultTarget:
        """Return this target with the SQLAlchemy ``engine`` its database faults fail."""
        return FaultTarget(
            self.name,
            self.kinds,
            self.path,
            engine,
            self.address,
            self.errors,
            self.values,
            self.max_seconds,
            self.max_call,
        )
