"""The structural types (Protocols) the modules agree on, in one place.

A repository plugs its own implementation in wherever one of these is accepted; nothing needs to
inherit from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_reliability.audit import AuditEvent

__all__ = ["AuditSink", "Clock", "ConnectionFaultProxy"]


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


@runtime_checkable
class ConnectionFaultProxy(Protocol):
    """A TCP proxy on 127.0.0.1 in front of a server, which breaks connections on demand.

    :class:`~pytest_reliability.chaos_infra.FaultProxy` is the shipped one; the ``chaos``
    fixture's ``chaos.proxy(host, port)`` returns one. Clients connect to ``host:port``.
    """

    host: str
    port: int

    def latency(
        self, seconds: float, direction: Literal["downstream", "upstream", "both"] = ...
    ) -> None:
        """Delay every chunk crossing in ``direction`` by ``seconds``."""
        ...

    def bandwidth(
        self, bytes_per_second: float, direction: Literal["downstream", "upstream", "both"] = ...
    ) -> None:
        """Limit forwarding in ``direction`` to ``bytes_per_second``."""
        ...

    def reset_after(self, n_bytes: int) -> None:
        """Reset each open and new connection once ``n_bytes`` more bytes crossed it."""
        ...

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        ...

    def half_open(self) -> None:
        """Accept new connections and never answer them; open ones stop forwarding."""
        ...

    def restore(self) -> None:
        """Remove every fault: forward again."""
        ...

    def faults(self) -> list[dict[str, Any]]:
        """Return every fault armed, as ``{target, kind, trigger, fired}`` records."""
        ...

    def close(self) -> None:
        """Stop listening and reset every connection. Safe to call twice."""
        ...
