"""The engine's audit events: what they are called and how they reach the audit log.

Every event's details carry ``operation`` and ``key_hash`` (SHA-256 of the key), never the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_reliability.audit import AuditLog
from pytest_reliability.idempotency._model import Scope
from pytest_reliability.protocols import AuditSink

__all__ = [
    "AUDIT_CONCURRENT_CONFLICT",
    "AUDIT_DUPLICATE_SUPPRESSED",
    "AUDIT_FINGERPRINT_MISMATCH",
    "AUDIT_LEASE_TAKEOVER",
    "AUDIT_REPLAY_DETECTED",
    "emit",
]

AUDIT_DUPLICATE_SUPPRESSED = "idempotency.duplicate_suppressed"
"""A duplicate got the stored response (or the stored terminal failure)."""
AUDIT_REPLAY_DETECTED = "idempotency.replay_detected"
"""A webhook delivery replayed an event already processed."""
AUDIT_FINGERPRINT_MISMATCH = "idempotency.fingerprint_mismatch"
"""The key came back with another payload (HTTP 422)."""
AUDIT_CONCURRENT_CONFLICT = "idempotency.concurrent_conflict"
"""A duplicate arrived while the first delivery held the key (HTTP 409)."""
AUDIT_LEASE_TAKEOVER = "idempotency.lease_takeover"
"""An expired lease was taken over; ``fence`` is the new fencing counter."""


def emit(
    audit: AuditSink | None,
    actor: str,
    action: str,
    scope: Scope,
    outcome: str,
    details: Mapping[str, Any],
    handle: Any = None,
) -> None:
    """Append one event; inside ``handle``'s transaction when it is the audit log's database."""
    if audit is None:
        return
    full = {"operation": scope.operation, "key_hash": scope.key_hash, **details}
    if (
        isinstance(audit, AuditLog)
        and handle is not None
        and getattr(handle, "engine", None) is audit.engine
    ):
        # Same database: the event commits or rolls back with the step it records.
        audit.append(
            action, actor=actor, target=scope.operation, outcome=outcome, details=full,
            connection=handle,
        )  # fmt: skip
        return
    audit.append(action, actor=actor, target=scope.operation, outcome=outcome, details=full)
