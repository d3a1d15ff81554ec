"""What a database holds: per-table row counts, content digests and audit chain heads.

The same functions read the source at backup time and the restored copy in a drill, so the two
are compared digest for digest. A table's digest does not depend on row order (a restore may
return rows in another order): each row is hashed on its own (two 64-bit hashes on PostgreSQL,
the two halves of MD5 of the row on SQLite) and the hashes are summed, which the database does
in one pass without sorting; SHA-256 over table name, count and sums is the digest.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from pytest_reliability.ops.backup_engine._manifest import Content, TableContent

AUDIT_HEADS_TABLE = "audit_heads"

# Session settings that fix every type's text form, so a row's text (and digest) is the same in
# the source and in a cluster restored from its dump.
PG_TEXT_SETTINGS = (
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
)

_PG_TABLES = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type = 'BASE TABLE'
  AND table_schema NOT IN ('pg_catalog', 'information_schema')
  AND table_schema NOT LIKE 'pg\\_%%'
  AND (%(schema)s::text IS NULL OR table_schema = %(schema)s::text)
ORDER BY 1, 2
"""

# Each row hashed with its columns' own hash functions (the ones hash partitioning relies on, so
# stable within a major version) under two seeds: no text conversion, a third of the cost of
# hashing the row text. A table with a column type that has no hash function falls back to
# hashing the row's text.
_PG_DIGEST_RECORD = """
SELECT count(*),
       coalesce(sum(hash_record_extended(t, 0)::numeric), 0),
       coalesce(sum(hash_record_extended(t, 1)::numeric), 0)
FROM {table} AS t
"""
_PG_DIGEST_TEXT = """
SELECT count(*),
       coalesce(sum(hashtextextended(r, 0)::numeric), 0),
       coalesce(sum(hashtextextended(r, 1)::numeric), 0)
FROM (SELECT t::text AS r FROM {table} AS t) AS rows
"""


def _table_digest(name: str, rows: int, low: Any, high: Any) -> str:
    return hashlib.sha256(f"{name}|{rows}|{low}|{high}".encode()).hexdigest()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def pg_tables(cur: Any, schema: str | None) -> list[tuple[str, str]]:
    """Return the (schema, table) pairs the backup covers."""
    cur.execute(_PG_TABLES, {"schema": schema})
    return [(str(s), str(t)) for s, t in cur.fetchall()]


def pg_table_content(cur: Any, schema: str, table: str) -> tuple[str, TableContent]:
    """Count and digest one table; the caller has applied :data:`PG_TEXT_SETTINGS`."""
    import psycopg

    name = f"{schema}.{table}"
    qualified = f"{_quote(schema)}.{_quote(table)}"
    cur.execute("SAVEPOINT reliability_digest")
    try:
        cur.execute(_PG_DIGEST_RECORD.format(table=qualified))
        method = "record"
    except (psycopg.errors.UndefinedFunction, psycopg.errors.FeatureNotSupported):
        # No hash function for some column type (or hash_record_extended before PostgreSQL 14).
        cur.execute("ROLLBACK TO SAVEPOINT reliability_digest")
        cur.execute(_PG_DIGEST_TEXT.format(table=qualified))
        method = "text"
    rows, low, high = cur.fetchone()
    cur.execute("RELEASE SAVEPOINT reliability_digest")
    digest = _table_digest(f"{method}:{name}", int(rows), low, high)
    return name, TableContent(int(rows), digest)


def pg_audit_heads(cur: Any, schema: str) -> dict[str, tuple[int, str]]:
    """Return every tenant's audit chain head in ``schema`` (empty without an audit log)."""
    cur.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (schema, AUDIT_HEADS_TABLE),
    )
    if cur.fetchone() is None:
        return {}
    cur.execute(f"SELECT tenant_id, last_seq, last_hash FROM {_quote(schema)}.{AUDIT_HEADS_TABLE}")
    return {str(t): (int(s), str(h)) for t, s, h in cur.fetchall()}


def pg_content(cur: Any, schema: str | None, audit_schema: str) -> Content:
    """Read a PostgreSQL database's content inside the caller's (snapshot) transaction."""
    for statement in PG_TEXT_SETTINGS:
        cur.execute(statement)
    tables = dict(pg_table_content(cur, s, t) for s, t in pg_tables(cur, schema))
    return Content(tables, pg_audit_heads(cur, audit_schema))


def sqlite_content(conn: sqlite3.Connection) -> Content:
    """Read a SQLite database's content (call on a copy nobody writes, or inside a transaction)."""
    names = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    tables: dict[str, TableContent] = {}
    for name in names:
        rows = low = high = 0
        for row in conn.execute(f"SELECT * FROM {_quote(name)}"):
            h = hashlib.md5(repr(row).encode(), usedforsecurity=False).digest()
            low += int.from_bytes(h[:8], "big")
            high += int.from_bytes(h[8:], "big")
            rows += 1
        tables[name] = TableContent(rows, _table_digest(name, rows, low, high))
    heads: dict[str, tuple[int, str]] = {}
    if AUDIT_HEADS_TABLE in names:
        for tenant, seq, last in conn.execute(
            f"SELECT tenant_id, last_seq, last_hash FROM {AUDIT_HEADS_TABLE}"
        ):
            heads[str(tenant)] = (int(seq), str(last))
    return Content(tables, heads)


def compare(expected: dict[str, Any], found: Content) -> list[str]:
    """Return every difference between a manifest's tables/heads and ``found``, in words."""
    problems: list[str] = []
    want = expected.get("tables", {})
    for name in sorted(set(want) | set(found.tables)):
        if name not in found.tables:
            problems.append(f"table {name} is missing from the restored copy")
        elif name not in want:
            problems.append(f"table {name} is in the restored copy but not in the manifest")
        elif want[name]["rows"] != found.tables[name].rows:
            problems.append(
                f"table {name} has {found.tables[name].rows} rows; the manifest says "
                f"{want[name]['rows']}"
            )
        elif want[name]["digest"] != found.tables[name].digest:
            problems.append(f"table {name} content digest differs from the manifest")
    heads = expected.get("audit_heads", {})
    restored = found.heads_json()
    for tenant in sorted(set(heads) | set(restored)):
        if heads.get(tenant) != restored.get(tenant):
            problems.append(
                f"audit head of tenant {tenant} is {restored.get(tenant)}; "
                f"the manifest says {heads.get(tenant)}"
            )
    return problems
