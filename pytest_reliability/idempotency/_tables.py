"""The idempotency engine's tables, on the package's shared metadata.

One row a key, primary key (tenant, operation, key hash): the raw key is never stored. Times are
integer milliseconds since the epoch, portable across SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from pytest_reliability.db import metadata, register_tables

idempotency_records = sa.Table(
    "idempotency_records",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("operation", sa.String(128), primary_key=True),
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    # A random token per claim: completion must present it (a reused counter could be replayed
    # by a stale worker after the key was released and claimed afresh).
    sa.Column("token", sa.String(64), nullable=False),
    # The fencing counter: 1 for the first claim, +1 on every takeover of an expired lease.
    sa.Column("fence", sa.Integer, nullable=False),
    sa.Column("lease_expires_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_idempotency_records_expires", "expires_ms"),
)
"""One row per (tenant, operation, key hash)."""

register_tables(idempotency_records)
