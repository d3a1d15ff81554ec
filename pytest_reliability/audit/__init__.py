"""The immutable, tamper-evident audit log.

Every security-critical action appends an :class:`AuditEvent` to a per-tenant hash chain (see
``_chain`` for the encoding). The tables refuse UPDATE and DELETE through triggers installed by
:func:`pytest_reliability.db.create_schema`; :meth:`AuditLog.verify` finds any change, deletion,
insertion, reordering or fork made behind the log's back. Secrets in ``details`` are redacted
before hashing (:func:`redact`).

:meth:`AuditLog.checkpoint` signs the heads with an Ed25519 key kept outside the database;
``verify(checkpoint=...)`` then also finds a rewrite, truncation or deletion by someone able to
disable the triggers. The checkpoint names load on first use, so importing the log does not
import ``cryptography``.
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

_CHECKPOINT_NAMES = (
    "SIGNING_KEY_ENV",
    "VERIFY_KEY_ENV",
    "Checkpoint",
    "CheckpointHead",
    "generate_key_pair",
    "key_id",
    "load_signing_key",
    "load_verify_key",
    "read_checkpoints",
)


def __getattr__(name: str) -> object:
    if name in _CHECKPOINT_NAMES:
        from pytest_reliability.audit import _checkpoint

        return getattr(_checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTION_MAX",
    "ACTOR_MAX",
    "DEFAULT_MAX_DETAILS_BYTES",
    "GENESIS_HASH",
    "OUTCOME_MAX",
    "REDACTED",
    "SECRET_KEY_PARTS",
    "SIGNING_KEY_ENV",
    "TARGET_MAX",
    "VERIFY_KEY_ENV",
    "AuditEvent",
    "AuditListener",
    "AuditLog",
    "BreakKind",
    "ChainBreak",
    "Checkpoint",
    "CheckpointHead",
    "InMemoryAuditLog",
    "VerifyResult",
    "add_listener",
    "canonical_json",
    "generate_key_pair",
    "is_secret_key",
    "key_id",
    "load_signing_key",
    "load_verify_key",
    "read_checkpoints",
    "redact",
    "redact_text",
    "register_secret_key_word",
    "register_secret_pattern",
    "remove_listener",
]
