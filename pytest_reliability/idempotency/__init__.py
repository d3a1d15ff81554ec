"""Exactly-once execution: the idempotency engine, its stores and webhook verification.

Start with :meth:`IdempotencyEngine.from_url` and :meth:`IdempotencyEngine.run`; see
``docs/idempotency.md`` for the whole story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_reliability._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_reliability.errors import PayloadNotSerializable, ReplayedFailure
    from pytest_reliability.idempotency._async import idempotent
    from pytest_reliability.idempotency._attempt import Attempt, current_attempt
    from pytest_reliability.idempotency._crash import SimulatedCrash, SimulatedFailure, crash_point
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
    from pytest_reliability.idempotency._sql_store import SqlStore
    from pytest_reliability.idempotency._store import IdempotencyStore, store_from_url
    from pytest_reliability.idempotency._webhooks import (
        DEFAULT_TOLERANCE_SECONDS,
        WebhookReceiver,
        sign_webhook,
        verify_webhook,
    )
    from pytest_reliability.testing._checker import CheckStats, IdempotencyChecker
    from pytest_reliability.testing._sequences import DELIVERY_KINDS, Delivery, RequestSequence

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

# Where each public name lives. Submodules load on first use, so importing one of them (the
# store protocol, the crash points) does not import SQLAlchemy, redis or Hypothesis. The checker
# and its sequences moved to pytest_reliability.testing; they stay importable from here.
_HOMES = {
    "AUDIT_CONCURRENT_CONFLICT": "._engine",
    "AUDIT_DUPLICATE_SUPPRESSED": "._engine",
    "AUDIT_FINGERPRINT_MISMATCH": "._engine",
    "AUDIT_LEASE_TAKEOVER": "._engine",
    "AUDIT_REPLAY_DETECTED": "._engine",
    "ApiResponse": "._helpers",
    "Attempt": "._attempt",
    "CheckStats": "pytest_reliability.testing",
    "DEFAULT_LEASE_SECONDS": "._model",
    "DEFAULT_MAX_PAYLOAD_BYTES": "._model",
    "DEFAULT_RETENTION_SECONDS": "._model",
    "DEFAULT_TOLERANCE_SECONDS": "._webhooks",
    "DELIVERY_KINDS": "pytest_reliability.testing",
    "Delivery": "pytest_reliability.testing",
    "IdempotencyChecker": "pytest_reliability.testing",
    "IdempotencyConfig": "._model",
    "IdempotencyEngine": "._engine",
    "IdempotencyStore": "._store",
    "KEY_MAX_LENGTH": "._model",
    "MemoryStore": "._memory_store",
    "Outcome": "._model",
    "PayloadNotSerializable": "pytest_reliability.errors",
    "Record": "._model",
    "ReplayedFailure": "pytest_reliability.errors",
    "RequestSequence": "pytest_reliability.testing",
    "Scope": "._model",
    "SimulatedCrash": "._crash",
    "SimulatedFailure": "._crash",
    "SqlStore": "._sql_store",
    "State": "._model",
    "WebhookReceiver": "._webhooks",
    "api_operation": "._helpers",
    "billing_operation": "._helpers",
    "crash_point": "._crash",
    "current_attempt": "._attempt",
    "fingerprint": "._model",
    "http_status_for": "._helpers",
    "idempotent": "._async",
    "key_hash": "._model",
    "sign_webhook": "._webhooks",
    "store_from_url": "._store",
    "validate_key": "._model",
    "verify_webhook": "._webhooks",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
