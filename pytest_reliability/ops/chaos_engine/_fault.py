"""A fault's trigger and its record, and the protocol a repository's own chaos target follows."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, final, runtime_checkable

from pytest_reliability.errors import ConfigurationError

__all__ = ["ChaosTarget", "Fault", "Trigger"]


@final
@dataclass(frozen=True, slots=True)
class Trigger:
    """When a fault fires: every call, the ``on_call``-th call only, or with ``probability``."""

    on_call: int | None = None
    probability: float | None = None

    def __post_init__(self) -> None:
        if self.on_call is not None and self.probability is not None:
            raise ConfigurationError("a fault takes on_call or probability, not both")
        if self.on_call is not None and (isinstance(self.on_call, bool) or self.on_call < 1):
            raise ConfigurationError(f"on_call must be 1 or more, not {self.on_call!r}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ConfigurationError(f"probability must be within [0, 1], not {self.probability!r}")

    def describe(self) -> str:
        """Return the trigger as the report writes it (``always``, ``call 3``, ``p=0.25``)."""
        if self.on_call is not None:
            return f"call {self.on_call}"
        if self.probability is not None:
            return f"p={self.probability:g}"
        return "always"


@final
class Fault:
    """One armed fault and what it did. Thread-safe: faulted code may run in threads."""

    __slots__ = (
        "_calls",
        "_lock",
        "_rng",
        "fired",
        "index",
        "kind",
        "observer",
        "target",
        "trigger",
    )

    def __init__(self, index: int, target: str, kind: str, trigger: Trigger, rng: random.Random):
        self.index = index
        self.target = target
        self.kind = kind
        self.trigger = trigger
        self.fired = 0
        """How many times the fault fired."""
        self._calls = 0
        self._rng = rng
        self._lock = threading.Lock()
        self.observer: Callable[[Fault, int, bool], None] | None = None
        """Told ``(fault, call number, fired)`` at every call (a schedule's history records it)."""

    def should_fire(self) -> bool:
        """Count one call at the target; return whether the fault fires on it."""
        with self._lock:
            self._calls += 1
            trigger = self.trigger
            if trigger.on_call is not None:
                fire = self._calls == trigger.on_call
            elif trigger.probability is not None:
                fire = self._rng.random() < trigger.probability
            else:
                fire = True
            if fire:
                self.fired += 1
            call = self._calls
        observer = self.observer
        if observer is not None:
            observer(self, call, fire)
        return fire

    @property
    def calls(self) -> int:
        """How many calls reached the target while the fault was armed."""
        return self._calls

    def as_dict(self) -> dict[str, Any]:
        """Return the fault as the report records it."""
        return {
            "target": self.target,
            "kind": self.kind,
            "trigger": self.trigger.describe(),
            "fired": self.fired,
        }


@runtime_checkable
class ChaosTarget(Protocol):
    """A repository's own fault target, registered through ``pytest_reliability_chaos_targets``."""

    def install(self, fault: Fault, params: Mapping[str, Any]) -> Callable[[], None]:
        """Install the fault (call ``fault.should_fire()`` at each chance); return its undo."""
        ...
