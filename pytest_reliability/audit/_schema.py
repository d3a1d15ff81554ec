"""The audit tables and the triggers that make them append-only at the database level.

``audit_events`` holds the chain, one row an event, unique on (tenant, seq). ``audit_heads`` holds
each tenant's last sequence number and hash: it is what lets ``verify`` notice a deleted or an
appended tail, and its trigger lets it only move forward one step at a time.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pytest_reliability.db import (
    is_postgres,
    is_sqlite,
    metadata,
    register_schema_hook,
    register_tables,
)

ACTION_MAX = 128
ACTOR_MAX = 255
TARGET_MAX = 255
OUTCOME_MAX = 64

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    # Integer microseconds since the epoch: exact, portable, and what the hash covers.
    sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(ACTION_MAX), nullable=False),
    sa.Column("actor", sa.String(ACTOR_MAX), nullable=False),
    sa.Column("target", sa.String(TARGET_MAX), nullable=False),
    sa.Column("outcome", sa.String(OUTCOME_MAX), nullable=False),
    # The canonical JSON text the hash covers, stored verbatim so verification re-hashes it as is.
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.String(64), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("tenant_id", "seq", name="uq_audit_events_tenant_seq"),
    sa.Index("ix_audit_events_tenant_action", "tenant_id", "action"),
)

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)

register_tables(audit_events, audit_heads)

_NOT_EXTENDING = "audit event does not extend the chain head"

_SQLITE_TRIGGERS = (
    # The database itself refuses an event that is not the next link of its tenant's chain, so
    # no writer (ours with a stale cached head, or anyone else's) can fork or skip.
    f"""CREATE TRIGGER IF NOT EXISTS audit_events_extend_head BEFORE INSERT ON audit_events
       WHEN NOT (
         (NEW.seq = 1 AND NEW.prev_hash = '{"0" * 64}'
           AND NOT EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id))
         OR EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id
           AND last_seq = NEW.seq - 1 AND last_hash = NEW.prev_hash))
       BEGIN SELECT RAISE(ABORT, '{_NOT_EXTENDING}'); END""",
    # The head follows every insert, so no writer can forget it and an insert that is not the
    # tenant's next event is refused by audit_heads_forward_only below.
    """CREATE TRIGGER IF NOT EXISTS audit_events_advance_head AFTER INSERT ON audit_events
       BEGIN
         INSERT INTO audit_heads (tenant_id, last_seq, last_hash)
           VALUES (NEW.tenant_id, NEW.seq, NEW.hash)
           ON CONFLICT (tenant_id) DO UPDATE
           SET last_seq = excluded.last_seq, last_hash = excluded.last_hash;
       END""",
    """CREATE TRIGGER IF NOT EXISTS audit_heads_start_at_one BEFORE INSERT ON audit_heads
       WHEN NEW.last_seq <> 1
         AND NOT EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id)
       BEGIN SELECT RAISE(ABORT, 'a tenant chain starts at sequence 1'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_heads_forward_only BEFORE UPDATE ON audit_heads
       WHEN NEW.last_seq <> OLD.last_seq + 1 OR NEW.tenant_id <> OLD.tenant_id
       BEGIN SELECT RAISE(ABORT, 'audit_heads only moves forward one event at a time'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_heads_no_delete BEFORE DELETE ON audit_heads
       BEGIN SELECT RAISE(ABORT, 'audit_heads is append-only: DELETE refused'); END""",
)

_PG_FUNCTIONS = (
    # SQLSTATE 40001 (serialization_failure): the writer raced another and should re-read.
    f"""CREATE OR REPLACE FUNCTION reliability_audit_extend_head() RETURNS trigger AS $$
       BEGIN
         IF NOT (
           (NEW.seq = 1 AND NEW.prev_hash = '{"0" * 64}'
             AND NOT EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id))
           OR EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id
             AND last_seq = NEW.seq - 1 AND last_hash = NEW.prev_hash)
         ) THEN
           RAISE EXCEPTION '{_NOT_EXTENDING}' USING ERRCODE = 'serialization_failure';
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION reliability_audit_advance_head() RETURNS trigger AS $$
       BEGIN
         INSERT INTO audit_heads (tenant_id, last_seq, last_hash)
           VALUES (NEW.tenant_id, NEW.seq, NEW.hash)
           ON CONFLICT (tenant_id) DO UPDATE
           SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION reliability_audit_head_start() RETURNS trigger AS $$
       BEGIN
         -- BEFORE INSERT also fires for the upsert that moves an existing head.
         IF NEW.last_seq <> 1 AND NOT EXISTS (
           SELECT 1 FROM audit_heads WHERE tenant_id = NEW.tenant_id
         ) THEN
           RAISE EXCEPTION 'a tenant chain starts at sequence 1'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION reliability_audit_refuse() RETURNS trigger AS $$
       BEGIN
         RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION reliability_audit_head_forward() RETURNS trigger AS $$
       BEGIN
         IF NEW.last_seq <> OLD.last_seq + 1 OR NEW.tenant_id <> OLD.tenant_id THEN
           RAISE EXCEPTION 'audit_heads only moves forward one event at a time'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
)

# (trigger name, table, timing and events, level, function)
_PG_TRIGGERS = (
    (
        "audit_events_extend_head",
        "audit_events",
        "BEFORE INSERT",
        "ROW",
        "reliability_audit_extend_head",
    ),
    (
        "audit_events_advance_head",
        "audit_events",
        "AFTER INSERT",
        "ROW",
        "reliability_audit_advance_head",
    ),
    (
        "audit_heads_start_at_one",
        "audit_heads",
        "BEFORE INSERT",
        "ROW",
        "reliability_audit_head_start",
    ),
    (
        "audit_events_no_update_delete",
        "audit_events",
        "BEFORE UPDATE OR DELETE",
        "ROW",
        "reliability_audit_refuse",
    ),
    (
        "audit_events_no_truncate",
        "audit_events",
        "BEFORE TRUNCATE",
        "STATEMENT",
        "reliability_audit_refuse",
    ),
    (
        "audit_heads_forward_only",
        "audit_heads",
        "BEFORE UPDATE",
        "ROW",
        "reliability_audit_head_forward",
    ),
    ("audit_heads_no_delete", "audit_heads", "BEFORE DELETE", "ROW", "reliability_audit_refuse"),
    (
        "audit_heads_no_truncate",
        "audit_heads",
        "BEFORE TRUNCATE",
        "STATEMENT",
        "reliability_audit_refuse",
    ),
)


@register_schema_hook
def install_audit_triggers(conn: Connection) -> None:
    """Install the append-only triggers (idempotent: a second run changes nothing)."""
    if is_sqlite(conn):
        for ddl in _SQLITE_TRIGGERS:
            conn.execute(sa.text(ddl))
    elif is_postgres(conn):
        for ddl in _PG_FUNCTIONS:
            conn.execute(sa.text(ddl))
        for name, table, when, level, function in _PG_TRIGGERS:
            conn.exec_driver_sql(
                f"CREATE OR REPLACE TRIGGER {name} {when} ON {table} "
                f"FOR EACH {level} EXECUTE FUNCTION {function}()"
            )
