"""The audit logs: :class:`AuditLog` on SQL, :class:`InMemoryAuditLog` for unit tests.

Both take the tenant and the correlation id from the context, redact secrets from the details,
validate every field before anything is written, and chain each event to the one before it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pytest_reliability.audit._chain import (
    GENESIS_HASH,
    AuditEvent,
    ChainBreak,
    ChainRow,
    Head,
    VerifyResult,
    canonical_json,
    event_hash,
    to_micros,
    verify_tenant,
)
from pytest_reliability.audit._redact import redact
from pytest_reliability.audit._schema import (
    _NOT_EXTENDING,
    ACTION_MAX,
    ACTOR_MAX,
    OUTCOME_MAX,
    TARGET_MAX,
    audit_events,
    audit_heads,
)
from pytest_reliability.clock import system_clock
from pytest_reliability.db._engine import (
    advisory_lock_key,
    is_postgres,
    is_sqlite,
    pg_advisory_xact_lock,
)
from pytest_reliability.errors import AuditError, InvalidAuditField, StoreUnavailable
from pytest_reliability.ids import current_correlation_id, new_id
from pytest_reliability.protocols import Clock
from pytest_reliability.tenancy import current_tenant, validate_tenant_id

DEFAULT_MAX_DETAILS_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_COLUMNS = ", ".join(ChainRow._fields)
_HEAD_SQL_QMARK = "SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = ?"
_INSERT_SQL_QMARK = f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"
_INSERT_SQL_FORMAT = f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"
_HEAD_SQL_FORMAT = "SELECT last_seq, last_hash FROM audit_heads WHERE tenant_id = %s"


_OPTIMISTIC_ATTEMPTS = 3
_LOCKED_ATTEMPTS = 50


def _lost_race_check(engine: Engine) -> Callable[[BaseException], bool]:
    """Return a test for "another writer took the position": retry, do not fail."""
    if engine.dialect.name == "sqlite":
        integrity = engine.dialect.loaded_dbapi.IntegrityError

        def sqlite_lost(exc: BaseException) -> bool:
            text = str(exc)
            return isinstance(exc, integrity) and (
                _NOT_EXTENDING in text or "audit_events.tenant_id, audit_events.seq" in text
            )

        return sqlite_lost
    import psycopg.errors

    def pg_lost(exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.SerializationFailure) or (
            isinstance(exc, psycopg.errors.UniqueViolation)
            and "uq_audit_events_tenant_seq" in str(exc)
        )

    return pg_lost


def _lock_name(tenant: str) -> str:
    return f"pytest_reliability.audit:{tenant}"


AuditListener = Callable[[AuditEvent], None]
_listeners: list[AuditListener] = []
_listeners_lock = threading.Lock()


def add_listener(listener: AuditListener) -> None:
    """Call ``listener(event)`` after every append in this process (the plugin counts events)."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_listener(listener: AuditListener) -> None:
    """Stop calling ``listener``; unknown listeners are ignored."""
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _notify(event: AuditEvent) -> None:
    with _listeners_lock:
        listeners = tuple(_listeners)
    for listener in listeners:
        listener(event)


def _check_field(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidAuditField(f"audit {name} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidAuditField(f"audit {name} must not be empty")
    if len(value) > limit:
        raise InvalidAuditField(f"audit {name} is {len(value)} characters; the limit is {limit}")
    if _CONTROL.search(value):
        raise InvalidAuditField(f"audit {name} {value!r} contains control characters")
    return value


def _encode_details(details: Mapping[str, Any] | None, limit: int) -> str:
    if details is None:
        return "{}"
    if not isinstance(details, Mapping):
        raise InvalidAuditField(f"audit details must be a mapping, not {type(details).__name__}")
    try:
        text = canonical_json(redact(details))
    except (TypeError, ValueError) as exc:
        raise InvalidAuditField(f"audit details cannot be encoded as JSON: {exc}") from exc
    size = len(text.encode())
    if size > limit:
        raise InvalidAuditField(f"audit details are {size} bytes encoded; the limit is {limit}")
    return text


class _Base:
    """What both logs share: validation and building the next row."""

    def __init__(self, clock: Clock | None, max_details_bytes: int) -> None:
        self._clock: Clock = clock if clock is not None else system_clock
        self._max_details = max_details_bytes

    def _prepare(
        self,
        action: str,
        actor: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any] | None,
    ) -> tuple[str, str, str, str, str]:
        return (
            _check_field("action", action, ACTION_MAX),
            _check_field("actor", actor, ACTOR_MAX),
            _check_field("target", target, TARGET_MAX),
            _check_field("outcome", outcome, OUTCOME_MAX),
            _encode_details(details, self._max_details),
        )

    def _row(
        self, tenant: str, seq: int, prev: str, fields: tuple[str, str, str, str, str]
    ) -> ChainRow:
        action, actor, target, outcome, details = fields
        partial = (
            tenant,
            seq,
            new_id("audit-event"),
            to_micros(self._clock.now()),
            action,
            actor,
            target,
            outcome,
            details,
            current_correlation_id(),
            prev,
        )
        return ChainRow(*partial, event_hash(partial))


@final
class AuditLog(_Base):
    """The tamper-evident audit log on a SQLAlchemy engine (SQLite or PostgreSQL).

    Call :func:`pytest_reliability.db.create_schema` once before the first append. Appends for
    one tenant are serialised (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
    concurrent writers in any number of threads or processes extend one gapless chain.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
    ) -> None:
        super().__init__(clock, max_details_bytes)
        self.engine = engine
        # The last head this log wrote per tenant: a hint that saves a read, never trusted (the
        # database refuses an event that does not extend the real head).
        self._heads: dict[str, tuple[int, str]] = {}

    def append(
        self,
        action: str,
        *,
        actor: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
        connection: Connection | None = None,
    ) -> AuditEvent:
        """Append one event for the current tenant and return it.

        With ``connection``, the event joins the caller's transaction and commits or rolls back
        with it (on SQLite, begin that transaction with
        :func:`~pytest_reliability.db.begin_immediate`). Listeners then hear of it at once,
        before the caller commits.
        """
        tenant = current_tenant()
        fields = self._prepare(action, actor, target, outcome, details)
        dbapi_errors = self.engine.dialect.loaded_dbapi
        try:
            if connection is not None:
                row = self._append_in(connection, tenant, fields)
            else:
                row = self._append_own(tenant, fields)
        except DBAPIError as exc:
            raise StoreUnavailable(f"audit append failed: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise AuditError(f"audit append failed: {exc}") from exc
        except dbapi_errors.OperationalError as exc:
            raise StoreUnavailable(f"audit append failed: {exc}") from exc
        except dbapi_errors.Error as exc:
            raise AuditError(f"audit append failed: {exc}") from exc
        event = AuditEvent.from_row(row)
        _notify(event)
        return event

    def _append_in(
        self, conn: Connection, tenant: str, fields: tuple[str, str, str, str, str]
    ) -> ChainRow:
        """Append inside the caller's SQLAlchemy transaction."""
        if is_postgres(conn):
            pg_advisory_xact_lock(conn, _lock_name(tenant))
        head = conn.execute(
            sa.select(audit_heads.c.last_seq, audit_heads.c.last_hash).where(
                audit_heads.c.tenant_id == tenant
            )
        ).first()
        seq = 1 if head is None else head.last_seq + 1
        prev = GENESIS_HASH if head is None else head.last_hash
        row = self._row(tenant, seq, prev, fields)
        # The head row follows through the audit_events_advance_head trigger.
        conn.execute(audit_events.insert().values(**row._asdict()))
        return row

    def _append_own(self, tenant: str, fields: tuple[str, str, str, str, str]) -> ChainRow:
        """Append in a transaction of our own, through the bare DBAPI connection.

        This is the hot path of every audited action, so it issues the fewest statements the
        chain allows and skips SQLAlchemy's statement layer, which costs more per event than the
        database work. Optimistic first: insert the next event after the head this log last saw
        (read it when unknown) as one autocommit statement. The database refuses any event that
        is not the next link of the tenant's chain (trigger ``audit_events_extend_head``, backed
        by the unique key on (tenant, seq)), and a trigger moves the head in the same
        transaction; so a writer whose head was stale is refused, never forks, and retries with
        a fresh read. After :data:`_OPTIMISTIC_ATTEMPTS` lost races it takes the tenant's lock
        (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so a hot tenant queues
        instead of spinning.
        """
        raw = self.engine.raw_connection()
        try:
            dbapi: Any = raw.driver_connection
            sqlite = self.engine.dialect.name == "sqlite"
            lost_race = _lost_race_check(self.engine)
            attempts = [False] * _OPTIMISTIC_ATTEMPTS + [True] * _LOCKED_ATTEMPTS
            for locked in attempts:
                head = None if locked else self._heads.get(tenant)
                try:
                    if sqlite:
                        row = self._append_sqlite(dbapi, tenant, fields, head, locked=locked)
                    else:
                        row = self._append_pg(dbapi, tenant, fields, head, locked=locked)
                except Exception as exc:
                    self._heads.pop(tenant, None)
                    if lost_race(exc):
                        continue
                    raise
                self._heads[tenant] = (row.seq, row.hash)
                return row
            raise AuditError(
                f"audit append for tenant {tenant!r} lost {len(attempts)} races in a row"
            )
        finally:
            raw.close()

    def _append_sqlite(
        self,
        dbapi: Any,
        tenant: str,
        fields: tuple[str, str, str, str, str],
        head: tuple[int, str] | None,
        *,
        locked: bool,
    ) -> ChainRow:
        cur = dbapi.cursor()
        if not locked:
            if head is None:
                cur.execute(_HEAD_SQL_QMARK, (tenant,))
                head = cur.fetchone()
            row = self._row_after(head, tenant, fields)
            cur.execute(_INSERT_SQL_QMARK, row)
            return row
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(_HEAD_SQL_QMARK, (tenant,))
            row = self._row_after(cur.fetchone(), tenant, fields)
            cur.execute(_INSERT_SQL_QMARK, row)
            cur.execute("COMMIT")
        except BaseException:
            if dbapi.in_transaction:
                cur.execute("ROLLBACK")
            raise
        return row

    def _append_pg(
        self,
        dbapi: Any,
        tenant: str,
        fields: tuple[str, str, str, str, str],
        head: tuple[int, str] | None,
        *,
        locked: bool,
    ) -> ChainRow:
        cur = dbapi.cursor()
        if not locked:
            dbapi.autocommit = True
            try:
                if head is None:
                    cur.execute(_HEAD_SQL_FORMAT, (tenant,))
                    head = cur.fetchone()
                row = self._row_after(head, tenant, fields)
                cur.execute(_INSERT_SQL_FORMAT, row)
            finally:
                dbapi.autocommit = False
            return row
        try:
            cur.execute(_LOCK_SQL, (advisory_lock_key(_lock_name(tenant)),))
            cur.execute(_HEAD_SQL_FORMAT, (tenant,))
            row = self._row_after(cur.fetchone(), tenant, fields)
            cur.execute(_INSERT_SQL_FORMAT, row)
            dbapi.commit()
        except BaseException:
            dbapi.rollback()
            raise
        return row

    def _row_after(
        self, head: tuple[Any, ...] | None, tenant: str, fields: tuple[str, str, str, str, str]
    ) -> ChainRow:
        if head is None or head[0] is None:
            return self._row(tenant, 1, GENESIS_HASH, fields)
        return self._row(tenant, head[0] + 1, head[1], fields)

    def events(self, *, action: str | None = None, limit: int | None = None) -> list[AuditEvent]:
        """Return the current tenant's events in sequence order, optionally of one action."""
        tenant = current_tenant()
        query = (
            sa.select(*[audit_events.c[name] for name in ChainRow._fields])
            .where(audit_events.c.tenant_id == tenant)
            .order_by(audit_events.c.seq)
        )
        if action is not None:
            query = query.where(audit_events.c.action == action)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [AuditEvent.from_row(tuple(r)) for r in conn.execute(query)]

    def verify(
        self, tenant: str | None = None, *, connection: Connection | None = None
    ) -> VerifyResult:
        """Verify one tenant's chain, or every tenant's when ``tenant`` is None.

        Returns a :class:`VerifyResult` naming the first break; it does not raise for a break
        (call ``raise_for_break()`` for that). With ``connection``, reads inside the caller's
        transaction (and sees its uncommitted changes).
        """
        if tenant is not None:
            validate_tenant_id(tenant)
        try:
            if connection is not None:
                return self._verify_in(connection, tenant)
            with self.engine.connect() as conn, conn.begin():
                return self._verify_in(conn, tenant)
        except DBAPIError as exc:
            raise StoreUnavailable(f"audit verify could not read the log: {exc.orig}") from exc

    def _verify_in(self, conn: Connection, tenant: str | None) -> VerifyResult:
        head_query = sa.select(
            audit_heads.c.tenant_id, audit_heads.c.last_seq, audit_heads.c.last_hash
        )
        if tenant is not None:
            head_query = head_query.where(audit_heads.c.tenant_id == tenant)
        heads = {r[0]: Head(r[1], r[2]) for r in conn.execute(head_query)}
        if tenant is None:
            found = conn.execute(sa.select(audit_events.c.tenant_id).distinct()).scalars()
            tenants = sorted(set(found) | heads.keys())
        else:
            tenants = [tenant]
        columns = ", ".join(ChainRow._fields)
        mark = "?" if is_sqlite(conn) else "%s"
        # The hot loop reads through the bare DBAPI cursor: SQLAlchemy's row objects cost more
        # per event than hashing it. PostgreSQL streams through a server-side cursor.
        sql = f"SELECT {columns} FROM audit_events WHERE tenant_id = {mark} ORDER BY seq, id"
        dbapi: Any = conn.connection.driver_connection
        total = 0
        for t in tenants:

            def load_all(t: str = t) -> list[ChainRow]:
                cur = dbapi.cursor()
                cur.execute(sql, (t,))
                return [ChainRow(*r) for r in cur.fetchall()]

            if is_postgres(conn):
                cursor = dbapi.cursor(name=f"audit_verify_{abs(hash(t))}", binary=True)
                cursor.itersize = 20_000
            else:
                cursor = dbapi.cursor()
            try:
                cursor.execute(sql, (t,))
                checked, broken = verify_tenant(t, cursor, heads.get(t), load_all)
            finally:
                cursor.close()
            total += checked
            if broken is not None:
                return VerifyResult(total, len(tenants), broken, tuple(tenants))
        return VerifyResult(total, len(tenants), None, tuple(tenants))


@final
class InMemoryAuditLog(_Base):
    """An audit log in this process's memory with the interface of :class:`AuditLog`.

    For unit tests and for services that forward events elsewhere; nothing survives the process.
    """

    def __init__(
        self, *, clock: Clock | None = None, max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES
    ) -> None:
        super().__init__(clock, max_details_bytes)
        self._rows: dict[str, list[ChainRow]] = {}
        self._lock = threading.Lock()

    def append(
        self,
        action: str,
        *,
        actor: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event for the current tenant and return it."""
        tenant = current_tenant()
        fields = self._prepare(action, actor, target, outcome, details)
        with self._lock:
            chain = self._rows.setdefault(tenant, [])
            prev = chain[-1].hash if chain else GENESIS_HASH
            row = self._row(tenant, len(chain) + 1, prev, fields)
            chain.append(row)
        event = AuditEvent.from_row(row)
        _notify(event)
        return event

    def events(self, *, action: str | None = None, limit: int | None = None) -> list[AuditEvent]:
        """Return the current tenant's events in sequence order, optionally of one action."""
        tenant = current_tenant()
        with self._lock:
            rows: Iterable[ChainRow] = list(self._rows.get(tenant, ()))
        selected = [AuditEvent.from_row(r) for r in rows if action is None or r.action == action]
        return selected if limit is None else selected[:limit]

    def verify(self, tenant: str | None = None) -> VerifyResult:
        """Verify the chains held in memory (see :meth:`AuditLog.verify`)."""
        with self._lock:
            snapshot = {t: list(rows) for t, rows in self._rows.items()}
        tenants = sorted(snapshot) if tenant is None else [validate_tenant_id(tenant)]
        total = 0
        for t in tenants:
            rows = snapshot.get(t, [])
            head = Head(len(rows), rows[-1].hash) if rows else None
            checked, broken = verify_tenant(t, rows, head, rows.copy)
            total += checked
            if broken is not None:
                return VerifyResult(total, len(tenants), broken, tuple(tenants))
        return VerifyResult(total, len(tenants), None, tuple(tenants))


__all__ = [
    "DEFAULT_MAX_DETAILS_BYTES",
    "AuditListener",
    "AuditLog",
    "ChainBreak",
    "InMemoryAuditLog",
    "add_listener",
    "remove_listener",
]
