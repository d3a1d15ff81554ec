"""What differs between databases for the audit log: statements, locking, lost races, streaming.

The append algorithm and the verifier in ``_log`` are written once against the small interface
of :class:`AuditDialect`; one subclass per database holds its SQL, how it takes a tenant's lock,
how it tells a lost race from a failure (the driver's own error classes are imported here and
nowhere else), and how it streams a chain for verification.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any

from sqlalchemy.engine import Engine

from pytest_reliability.audit._chain import ChainRow, Head
from pytest_reliability.audit._schema import _NOT_EXTENDING
from pytest_reliability.db import advisory_lock_key, check_engine, shares_one_connection

_COLUMNS = ", ".join(ChainRow._fields)


def lock_name(tenant: str) -> str:
    """The name of the advisory lock that serialises one tenant's appends."""
    return f"pytest_reliability.audit:{tenant}"


class AuditDialect:
    """The per-database part of the audit log; subclasses fill in the statements."""

    mark = "?"

    def __init__(self) -> None:
        m = self.mark
        self.head_sql = f"SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = {m}"
        self.heads_sql = "SELECT tenant_id, last_seq, last_hash FROM audit_heads"
        self.insert_sql = f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({', '.join([m] * 12)})"
        self.tenants_sql = "SELECT DISTINCT tenant_id FROM audit_events"
        where = f"FROM audit_events WHERE tenant_id = {m}"
        self.chain_sql = f"SELECT {_COLUMNS} {where} ORDER BY seq, id"
        self.at_seq_sql = f"SELECT {_COLUMNS} {where} AND seq = {m} ORDER BY id"
        self.hash_sql = f"SELECT seq {where} AND hash = {m} ORDER BY id DESC LIMIT 1"
        self.prev_sql = f"SELECT seq {where} AND prev_hash = {m} ORDER BY id DESC LIMIT 1"
        self.hash_at_sql = f"SELECT hash {where} AND seq = {m} ORDER BY id"

    def begin(self, dbapi: Any, cur: Any, *, locked: bool, tenant: str) -> Any:
        """Open an append transaction of our own; return what :meth:`end` restores."""
        raise NotImplementedError

    def lock(self, cur: Any, tenant: str) -> None:
        """Take ``tenant``'s append lock inside a transaction that is already open."""

    def commit(self, dbapi: Any, cur: Any) -> None:
        """Commit the append transaction (explicitly: nothing is acknowledged before this)."""
        raise NotImplementedError

    def rollback(self, dbapi: Any) -> None:
        """Roll the append transaction back, if one is open."""
        raise NotImplementedError

    def end(self, dbapi: Any, saved: Any) -> None:
        """Restore the connection settings :meth:`begin` changed."""

    def lost_race(self, exc: BaseException) -> bool:
        """Whether ``exc`` means another writer took the position: retry, do not fail."""
        raise NotImplementedError

    def begin_read(self, dbapi: Any) -> None:
        """Make the verifier's reads one snapshot, when the connection is not in one already."""

    def chain(self, dbapi: Any, tenant: str) -> Iterator[tuple[Any, ...]]:
        """Stream ``tenant``'s rows in chain order, holding a bounded number in memory."""
        cur = dbapi.cursor()
        try:
            cur.execute(self.chain_sql, (tenant,))
            yield from cur
        finally:
            cur.close()

    def heads(self, dbapi: Any) -> dict[str, Head]:
        """Every tenant's recorded head."""
        cur = dbapi.cursor()
        try:
            cur.execute(self.heads_sql)
            return {r[0]: Head(r[1], r[2]) for r in cur.fetchall()}
        finally:
            cur.close()

    def tenants(self, dbapi: Any) -> set[str]:
        """Every tenant with at least one stored event."""
        cur = dbapi.cursor()
        try:
            cur.execute(self.tenants_sql)
            return {r[0] for r in cur.fetchall()}
        finally:
            cur.close()

    def query(self, dbapi: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one small query and return its rows."""
        cur = dbapi.cursor()
        try:
            cur.execute(sql, params)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()


class SqliteDialect(AuditDialect):
    """SQLite through the standard library's ``sqlite3``, whatever its transaction settings.

    ``BEGIN IMMEDIATE`` takes the database's write lock up front, so our own writers queue
    (busy timeout) instead of racing; ``COMMIT`` is issued as a statement, which commits in every
    ``isolation_level`` the engine may have set (the sqlite3 module's implicit transactions
    included, which a returned pooled connection would otherwise roll back).
    """

    def begin(self, dbapi: Any, cur: Any, *, locked: bool, tenant: str) -> None:
        """``BEGIN IMMEDIATE``: our writers serialise on the write lock, optimistic or not."""
        cur.execute("BEGIN IMMEDIATE")

    def commit(self, dbapi: Any, cur: Any) -> None:
        """``COMMIT`` as a statement."""
        cur.execute("COMMIT")

    def rollback(self, dbapi: Any) -> None:
        """Roll back if a transaction is open."""
        if dbapi.in_transaction:
            dbapi.rollback()

    def lost_race(self, exc: BaseException) -> bool:
        """The chain trigger or the (tenant, seq) key refused a stale head."""
        import sqlite3

        text = str(exc)
        return isinstance(exc, sqlite3.IntegrityError) and (
            _NOT_EXTENDING in text or "audit_events.tenant_id, audit_events.seq" in text
        )

    def begin_read(self, dbapi: Any) -> None:
        """A deferred ``BEGIN``: every read after it sees one snapshot."""
        if not dbapi.in_transaction:
            dbapi.execute("BEGIN")


class PostgresDialect(AuditDialect):
    """PostgreSQL through psycopg 3.

    Optimistic appends run as autocommit statements (committed by the server before it answers);
    locked appends take the tenant's transaction-scoped advisory lock. Verification streams the
    chain in chunks of rows built by psycopg's C loaders (libpq 17 and newer; ``COPY ... TO
    STDOUT`` with older ones), faster than fetching from a server-side cursor and just as
    bounded in memory.
    """

    mark = "%s"

    def begin(self, dbapi: Any, cur: Any, *, locked: bool, tenant: str) -> bool:
        """Autocommit for an optimistic append, a transaction for a locked one."""
        saved = bool(dbapi.autocommit)
        dbapi.autocommit = not locked
        return saved

    def lock(self, cur: Any, tenant: str) -> None:
        """The tenant's advisory lock, released at commit or rollback."""
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(lock_name(tenant)),))

    def commit(self, dbapi: Any, cur: Any) -> None:
        """Commit, unless the statements were autocommitted already."""
        if not dbapi.autocommit:
            dbapi.commit()

    def rollback(self, dbapi: Any) -> None:
        """Roll back (a no-op with nothing open)."""
        dbapi.rollback()

    def end(self, dbapi: Any, saved: Any) -> None:
        """Give the pooled connection back with the autocommit setting it came with."""
        dbapi.autocommit = bool(saved)

    def lost_race(self, exc: BaseException) -> bool:
        """The chain trigger (SQLSTATE 40001) or the (tenant, seq) key refused a stale head."""
        import psycopg.errors

        return isinstance(exc, psycopg.errors.SerializationFailure) or (
            isinstance(exc, psycopg.errors.UniqueViolation)
            and "uq_audit_events_tenant_seq" in str(exc)
        )

    def chain(self, dbapi: Any, tenant: str) -> Iterator[tuple[Any, ...]]:
        """Stream the rows in chunks (libpq 17 and newer), else with ``COPY ... TO STDOUT``."""
        if _chunked_rows():
            return self._chain_chunked(dbapi, tenant)
        return self._chain_copy(dbapi, tenant)

    def _chain_chunked(self, dbapi: Any, tenant: str) -> Iterator[tuple[Any, ...]]:
        # libpq's chunked-rows mode: the server streams the result and psycopg's C loaders build
        # _STREAM_CHUNK rows per network read, where COPY hands each row through a Python
        # generator step of its own (about half of the client's CPU time per event).
        cur = dbapi.cursor()
        try:
            with _index_order(dbapi):
                rows = cur.stream(self.chain_sql, (tenant,), size=_STREAM_CHUNK)
                for row in rows:
                    try:
                        yield row
                    except GeneratorExit:
                        # The verifier stopped at a break and will look rows up on this
                        # connection: abandoning the stream cancels the query and aborts the
                        # read transaction those lookups need, so drain it (memory stays flat;
                        # only time is spent).
                        for _ in rows:
                            pass
                        raise
        finally:
            cur.close()

    def _chain_copy(self, dbapi: Any, tenant: str) -> Iterator[tuple[Any, ...]]:
        from psycopg import sql

        statement = sql.SQL("COPY ({} ) TO STDOUT").format(
            sql.SQL(self.chain_sql.replace("%s", "{}")).format(sql.Literal(tenant))
        )
        cur = dbapi.cursor()
        try:
            with _index_order(dbapi), cur.copy(statement) as copy:
                copy.set_types(_PG_TYPES)
                while (row := copy.read_row()) is not None:
                    try:
                        yield row
                    except GeneratorExit:
                        # As in _chain_chunked: finish reading rather than cancel.
                        while copy.read_row() is not None:
                            pass
                        raise
        finally:
            cur.close()


@contextmanager
def _index_order(dbapi: Any) -> Iterator[None]:
    """Read the chain in index order, never through a sort, within the current transaction.

    With statistics missing or stale (a bulk load before autovacuum's ANALYZE, a restored
    backup) the planner may sort the whole chain first: an external merge sort on disk, all
    before the first row (a third of the verification time on 100,000 events, and unbounded
    time and disk for a long chain). The (tenant, seq) index gives the order already; only
    the tie-break on ``id`` is left, which an incremental sort does in small groups. The
    setting is local to the transaction and put back afterwards (the caller's own
    transaction may be the one verified in); outside a transaction it cannot apply.
    """
    import psycopg
    from psycopg import pq

    if dbapi.info.transaction_status != pq.TransactionStatus.INTRANS:
        yield
        return
    cur = dbapi.cursor()
    try:
        cur.execute("SELECT current_setting('enable_sort')")
        before = cur.fetchone()[0]
        cur.execute("SELECT set_config('enable_sort', 'off', true)")
        try:
            yield
        finally:
            # In an aborted transaction this fails, and the rollback undoes the setting anyway.
            with suppress(psycopg.Error):
                cur.execute("SELECT set_config('enable_sort', %s, true)", (before,))
    finally:
        cur.close()


_STREAM_CHUNK = 5_000
"""Rows per chunk when streaming the chain: memory stays bounded by one chunk."""


def _chunked_rows() -> bool:
    """Whether the loaded libpq streams results in chunks (``PQsetChunkedRowsMode``, libpq 17)."""
    import psycopg

    return psycopg.pq.version() >= 170000


# COPY's text output parsed as: seq and occurred_at_us integers, every other column text.
_PG_TYPES = ["int8" if name in ("seq", "occurred_at_us") else "text" for name in ChainRow._fields]

_SQLITE = SqliteDialect()
_POSTGRES = PostgresDialect()
_engine_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_engine_locks_guard = threading.Lock()


def dialect_for(engine: Engine) -> AuditDialect:
    """The dialect of ``engine``; an engine that cannot work raises ConfigurationError."""
    backend = check_engine(engine, user="AuditLog")
    return _SQLITE if backend == "sqlite" else _POSTGRES


def engine_guard(engine: Engine) -> AbstractContextManager[Any]:
    """A lock for engines whose pool shares one connection between threads; else nothing."""
    if not shares_one_connection(engine):
        return nullcontext()
    with _engine_locks_guard:
        lock = _engine_locks.get(engine)
        if lock is None:
            lock = _engine_locks[engine] = threading.Lock()
    return lock
