"""Abuse protection's audit events: what they are called, what they carry, how none is lost.

Subjects appear as :func:`~pytest_reliability.security.abuse_protection._model.subject_label`
(an IP as itself, anything else as a digest), accounts never. An append that fails (the audit
database is down) is kept in a bounded in-process outbox and retried before the next event, so
an event is late rather than lost while the process lives.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, final

from pytest_reliability.protocols import AuditSink
from pytest_reliability.tenancy import tenant_scope

__all__ = [
    "AUDIT_BLOCK_EXPIRED",
    "AUDIT_ENFORCED",
    "AUDIT_ESCALATED",
    "AUDIT_UNBLOCKED",
    "AuditOutbox",
]

AUDIT_ESCALATED: Final = "abuse.escalated"
"""A subject's tier went up (a detector, the throttle strikes, or an ops block)."""
AUDIT_ENFORCED: Final = "abuse.enforced"
"""The first denial of a subject in an audit window; ``suppressed_before`` counts the denials
since the previous enforcement event that were not logged one by one."""
AUDIT_BLOCK_EXPIRED: Final = "abuse.block_expired"
"""A block ended (seen by a decision or by the sweeper); exactly one per block."""
AUDIT_UNBLOCKED: Final = "abuse.unblocked"
"""An operator lifted a subject's tier by hand."""

_log = logging.getLogger("pytest_reliability.security.abuse")


@final
class AuditOutbox:
    """Appends events to a sink; keeps the ones that failed and retries them first."""

    __slots__ = ("_lock", "_pending", "actor", "sink")

    def __init__(self, sink: AuditSink | None, actor: str, *, capacity: int = 10_000) -> None:
        self.sink = sink
        self.actor = actor
        self._pending: deque[tuple[str, str, str, str, dict[str, Any], str]] = deque(
            maxlen=capacity
        )
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Events waiting for the sink to come back."""
        return len(self._pending)

    def emit(
        self,
        tenant: str,
        action: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> None:
        """Append one event in ``tenant``'s chain (queued if the sink fails)."""
        if self.sink is None:
            return
        if self._pending:
            self.flush()
        event = (tenant, action, target, outcome, dict(details), actor or self.actor)
        if not self._send(event):
            with self._lock:
                if len(self._pending) == self._pending.maxlen:
                    _log.error("abuse audit outbox full: the oldest pending event is dropped")
                self._pending.append(event)

    def flush(self) -> int:
        """Retry the pending events in order; return how many are still pending."""
        while True:
            with self._lock:
                if not self._pending:
                    return 0
                event = self._pending[0]
            if not self._send(event):
                return len(self._pending)
            with self._lock:
                if self._pending and self._pending[0] is event:
                    self._pending.popleft()

    def _send(self, event: tuple[str, str, str, str, dict[str, Any], str]) -> bool:
        tenant, action, target, outcome, details, actor = event
        assert self.sink is not None
        try:
            with tenant_scope(tenant):
                self.sink.append(
                    action, actor=actor, target=target, outcome=outcome, details=details
                )
        except Exception as exc:
            _log.warning("abuse audit append failed (%s); the event is kept for retry", exc)
            return False
        return True
