"""The ops control plane's tables, on the package's shared metadata.

``ops_kill_switches`` holds the current state of each kill switch, one row per (namespace, name).
The namespace lets several independent sets of switches share one database (one per service, or
one per test). History lives in the audit log, not here: the row is overwritten on every flip and
``version`` counts the flips.
"""

from __future__ import annotations

import sqlalchemy as sa

from pytest_reliability.db import metadata, register_tables

__all__ = ["NAMESPACE_MAX", "REASON_MAX", "SWITCH_NAME_MAX", "ops_kill_switches"]

NAMESPACE_MAX = 64
SWITCH_NAME_MAX = 64
REASON_MAX = 500

ops_kill_switches = sa.Table(
    "ops_kill_switches",
    metadata,
    sa.Column("namespace", sa.String(NAMESPACE_MAX), primary_key=True),
    sa.Column("name", sa.String(SWITCH_NAME_MAX), primary_key=True),
    sa.Column("engaged", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(REASON_MAX), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    # Seconds since the epoch as a float: sub-millisecond, and the same in SQLite and PostgreSQL.
    sa.Column("changed_at", sa.Float, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

register_tables(ops_kill_switches)
