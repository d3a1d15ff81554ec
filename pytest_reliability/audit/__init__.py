"""The immutable, tamper-evident audit log.

Every security-critical action appends an :class:`AuditEvent` to a per-tenant hash chain (see
``_chain`` for the encoding). The tables refuse UPDATE and DELETE through triggers installed by
:func:`pytest_reliability.db.create_schema`; :meth:`AuditLog.verify` finds any change, deletion,
insertion, reordering or fork made behind the log's back. Secrets in ``details`` are redacted
before hashing (:func:`redact`).
"""

from __future__ import annotations

from pytest_reliability.audit._chain import (
    GENESIS_HASH,
    AuditEvent,
    BreakKind,
    ChainBreak,
    VerifyResult,
    canonical_json,
)
from pytest_reliability.audit._log import (
    DEFAULT_MAX_DETAILS_BYTES,
    AuditListener,
    AuditLog,
    InMemoryAuditLog,
    add_listener,
    remove_listener,
)
from pytest_reliability.audit._redact import (
    REDACTED,
    SECRET_KEY_PARTS,
    is_secret_key,
    redact,
    redact_text,
    register_secret_key_word,
    register_secret_pattern,
)
from pytest_reliability.audit._schema import ACTION_MAX, ACTOR_MAX, OUTCOME_MAX, TARGET_MAX

__all__ = [
    "ACTION_MAX",
    "ACTOR_MAX",
    "DEFAULT_MAX_DETAILS_BYTES",
    "GENESIS_HASH",
    "OUTCOME_MAX",
    "REDACTED",
    "SECRET_KEY_PARTS",
    "TARGET_MAX",
    "AuditEvent",
    "AuditListener",
    "AuditLog",
    "BreakKind",
    "ChainBreak",
    "InMemoryAuditLog",
    "VerifyResult",
    "add_listener",
    "canonical_json",
    "is_secret_key",
    "redact",
    "redact_text",
    "register_secret_key_word",
    "register_secret_pattern",
    "remove_listener",
]
