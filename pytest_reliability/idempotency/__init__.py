"""Exactly-once execution: the idempotency engine, its stores and webhook verification.

Start with :meth:`IdempotencyEngine.from_url` and :meth:`IdempotencyEngine.run`; see
``docs/idempotency.md`` for the whole story.
"""

from __future__ import annotations

from pytest_reliability.errors import PayloadNotSerializable, ReplayedFailure
from pytest_reliability.idempotency._async import idempotent
from pytest_reliability.idempotency._attempt import Attempt, current_attempt
from pytest_reliability.idempotency._checker import (
    CheckStats,
    IdempotencyChecker,
    SimulatedCrash,
    SimulatedFailure,
    crash_point,
)
from pytest_reliability.idempotency._engine import (
    AUDIT_CONCURRENT_CONFLICT,
    AUDIT_DUPLICATE_SUPPRESSED,
    AUDIT_FINGERPRINT_MISMATCH,
    AUDIT_LEASE_TAKEOVER,
    AUDIT_REPLAY_DETECTED,
    IdempotencyEngine,
)
from pytest_reliability.idempotency._helpers import (
    ApiResponse,
    api_operation,
    billing_operation,
    http_status_for,
)
from pytest_reliability.idempotency._memory_store import MemoryStore
from pytest_reliability.idempotency._model import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_RETENTION_SECONDS,
    KEY_MAX_LENGTH,
    IdempotencyConfig,
    Outcome,
    Record,
    Scope,
    State,
    fingerprint,
    key_hash,
    validate_key,
)
from pytest_reliability.idempotency._sequences import DELIVERY_KINDS, Delivery, RequestSequence
from pytest_reliability.idempotency._sql_store import SqlStore
from pytest_reliability.idempotency._store import IdempotencyStore, store_from_url
from pytest_reliability.idempotency._webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    WebhookReceiver,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "AUDIT_CONCURRENT_CONFLICT",
    "AUDIT_DUPLICATE_SUPPRESSED",
    "AUDIT_FINGERPRINT_MISMATCH",
    "AUDIT_LEASE_TAKEOVER",
    "AUDIT_REPLAY_DETECTED",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_RETENTION_SECONDS",
    "DEFAULT_TOLERANCE_SECONDS",
    "DELIVERY_KINDS",
    "KEY_MAX_LENGTH",
    "ApiResponse",
    "Attempt",
    "CheckStats",
    "Delivery",
    "IdempotencyChecker",
    "IdempotencyConfig",
    "IdempotencyEngine",
    "IdempotencyStore",
    "MemoryStore",
    "Outcome",
    "PayloadNotSerializable",
    "Record",
    "ReplayedFailure",
    "RequestSequence",
    "Scope",
    "SimulatedCrash",
    "SimulatedFailure",
    "SqlStore",
    "State",
    "WebhookReceiver",
    "api_operation",
    "billing_operation",
    "crash_point",
    "current_attempt",
    "fingerprint",
    "http_status_for",
    "idempotent",
    "key_hash",
    "sign_webhook",
    "store_from_url",
    "validate_key",
    "verify_webhook",
]
