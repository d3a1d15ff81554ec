"""Abuse protection's table, on the package's shared metadata.

One row per (tenant, kind, name): kind ``s`` is a subject (its tier and counters), kind ``a`` an
account digest (auth spam counters across subjects). ``data`` is the JSON the transition works
on; ``expires_ms`` drives the purge and ``block_until_ms`` (set while the subject is blocked) the
expiry sweeper. Times are integer milliseconds since the epoch.
"""

from __future__ import annotations

import sqlalchemy as sa

from pytest_reliability.db import metadata, register_tables

abuse_state = sa.Table(
    "abuse_state",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(1), primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("block_until_ms", sa.BigInteger, nullable=True),
    sa.Index("ix_abuse_state_expires", "expires_ms"),
    sa.Index("ix_abuse_state_block_until", "block_until_ms"),
)
"""One row per subject or account of a tenant."""

abuse_outbox = sa.Table(
    "abuse_outbox",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("record_id", sa.String(64), nullable=False, unique=True),
    sa.Column("record", sa.Text, nullable=False),
)
"""Audit events not yet in the audit log: one record per audited step, written in the step's
transaction, delivered in ``seq`` order and deleted once appended. The flush lease is the
``abuse_state`` row (``''``, ``o``, ``flush``): ``data`` its owner, ``expires_ms`` its end."""

register_tables(abuse_state, abuse_outbox)
