"""The structural types (Protocols) the modules agree on, in one place.

A repository plugs its own implementation in wherever one of these is accepted; nothing needs to
inherit from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_reliability.audit import AuditEvent

__all__ = ["AuditSink", "Clock"]


@runtime_checkable
class Clock(Protocol):
    """Where the modules read time, so tests advance it instead of sleeping.

    ``now`` is wall-clock time as an aware UTC datetime (timestamps, retention, tolerance
    windows); ``monotonic`` is for durations and deadlines; ``sleep`` waits on this clock.
    """

    def now(self) -> datetime:
        """Return the current wall-clock time, timezone-aware, in UTC."""
        ...

    def time(self) -> float:
        """Return the current wall-clock time in seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic reading in seconds, for durations only."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


@runtime_checkable
class AuditSink(Protocol):
    """Anything that appends audit events: the SQL :class:`AuditLog` or the in-memory one."""

    def append(
        self,
        action: str,
        *,
        actor: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event for the current tenant and return it."""
        ...
