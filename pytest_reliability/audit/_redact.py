"""Redaction of secrets from audit details before anything is hashed or stored.

A key is secret when, lower-cased with ``-`` and spaces read as ``_``, it contains one of
:data:`SECRET_KEY_PARTS` (so ``password``, ``db_password``, ``X-Api-Key``, ``refresh_token``,
``Authorization`` and ``client_secret`` are all caught). Its value, whatever its type, becomes
:data:`REDACTED`. Redaction recurses through mappings and lists; keys are never dropped, so the
audit trail still shows that a secret was present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "cookie",
    "session_id",
    "signature",
)


def is_secret_key(key: str) -> bool:
    """Return whether a details key names a secret."""
    folded = key.lower().replace("-", "_").replace(" ", "_")
    return any(part in folded for part in SECRET_KEY_PARTS)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with the values of secret keys replaced by :data:`REDACTED`."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
