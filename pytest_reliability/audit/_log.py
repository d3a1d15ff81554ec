"""The audit logs: :class:`AuditLog` on SQL, :class:`InMemoryAuditLog` for unit tests.

Both take the tenant and the correlation id from the context, redact secrets from the details,
validate every field before anything is written, and chain each event to the one before it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, final

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from pytest_reliability._sql_bounds import (
    DEFAULT_STORE_TIMEOUT,
    Deadline,
    bound_engine,
    check_timeout,
    checkout,
)
from pytest_reliability.audit._chain import (
    GENESIS_HASH,
    AuditEvent,
    ChainBreak,
    ChainRow,
    Head,
    RowsLookup,
    VerifyResult,
    canonical_json,
    event_hash,
    to_micros,
    verify_tenant,
)
from pytest_reliability.audit._dialect import AuditDialect, dialect_for, engine_guard
from pytest_reliability.audit._redact import redact
from pytest_reliability.audit._schema import ACTION_MAX, ACTOR_MAX, OUTCOME_MAX, TARGET_MAX
from pytest_reliability.clock import system_clock
from pytest_reliability.errors import AuditError, InvalidAuditField, StoreUnavailable
from pytest_reliability.ids import current_correlation_id, new_id
from pytest_reliability.protocols import Clock
from pytest_reliability.tenancy import current_tenant, validate_tenant_id

if TYPE_CHECKING:
    from pytest_reliability.audit._checkpoint import (
        Checkpoint,
        CheckpointDestination,
        SigningKey,
        VerifyKey,
    )
    from pytest_reliability.audit._verify import CheckpointSource

DEFAULT_MAX_DETAILS_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_OPTIMISTIC_ATTEMPTS = 3
_LOCKED_ATTEMPTS = 50
# An append joining the caller's transaction takes the lock at once and cannot retry.
_CALLER_ATTEMPTS = (True,)
_OWN_ATTEMPTS = (False,) * _OPTIMISTIC_ATTEMPTS + (True,) * _LOCKED_ATTEMPTS


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

    Takes any engine the service has (:func:`~pytest_reliability.db.make_engine` or plain
    :func:`sqlalchemy.create_engine`, any pool); one that cannot keep a write is refused here
    with :class:`~pytest_reliability.errors.ConfigurationError` (see
    :func:`~pytest_reliability.db.check_engine`). An append is committed before it returns.

    Call :func:`pytest_reliability.db.create_schema` once before the first append. Appends for
    one tenant are serialised (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
    concurrent writers in any number of threads or processes extend one gapless chain.

    ``timeout`` bounds an append in its own transaction on PostgreSQL (connect, lock wait,
    statements, commit), client-side, so it holds against a frozen server too: past it the
    append raises :class:`~pytest_reliability.errors.StoreUnavailable`. As with any lost answer
    to a commit, the event may still be committed if the server had received the commit; the
    chain stays whole either way, and the caller must treat the action as not audited.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
        timeout: float = DEFAULT_STORE_TIMEOUT,
    ) -> None:
        self._dialect: AuditDialect = dialect_for(engine)
        super().__init__(clock, max_details_bytes)
        self.engine = engine
        self.timeout = check_timeout(timeout)
        bound_engine(engine, self.timeout)
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
        """Append one event for the current tenant and return it, committed.

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
                if not connection.in_transaction():
                    connection.begin()  # what connection.execute() would do (autobegin)
                row = self._append(connection.connection.driver_connection, tenant, fields, False)
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

    def _append_own(self, tenant: str, fields: tuple[str, str, str, str, str]) -> ChainRow:
        """Append in a transaction of our own, under the client-side deadline."""
        deadline = Deadline(self.timeout)
        raw: PoolProxiedConnection | None = None
        with engine_guard(self.engine):
            try:
                with checkout(deadline):  # a pool pre-ping runs under the deadline too
                    raw = self.engine.raw_connection()
                deadline.arm_dbapi(raw.driver_connection)
                return self._append(raw.driver_connection, tenant, fields, True)
            except Exception as exc:
                deadline.disarm()
                if deadline.fired:
                    raise StoreUnavailable(
                        f"audit append did not answer within {self.timeout:g} s "
                        f"(client-side deadline; a commit the server already received may "
                        f"still land): {type(exc).__name__}"
                    ) from exc
                raise
            finally:
                deadline.disarm()
                if raw is not None:
                    driver = raw.driver_connection
                    if deadline.fired or getattr(driver, "broken", False):
                        # Cut by the deadline or lost with the server: never hand it out again.
                        raw.invalidate()
                    raw.close()

    def _append(
        self, dbapi: Any, tenant: str, fields: tuple[str, str, str, str, str], own: bool
    ) -> ChainRow:
        """The one append algorithm; ``own`` is whether the transaction is ours to run.

        This is the hot path of every audited action, so it speaks to the driver directly and
        issues the fewest statements the chain allows. Optimistic first: insert the next event
        after the head this log last saw (read it when unknown). The database refuses any event
        that is not the next link of the tenant's chain (trigger ``audit_events_extend_head``,
        backed by the unique key on (tenant, seq)) and a trigger moves the head in the same
        transaction, so a writer whose head was stale is refused, never forks, and retries with
        a fresh read. After :data:`_OPTIMISTIC_ATTEMPTS` lost races it takes the tenant's lock
        first, so a hot tenant queues instead of spinning. Nothing is returned before the
        dialect's commit.
        """
        d = self._dialect
        attempts = _OWN_ATTEMPTS if own else _CALLER_ATTEMPTS
        for locked in attempts:
            head: tuple[Any, ...] | None = None if locked else self._heads.get(tenant)
            cur = dbapi.cursor()
            saved = d.begin(dbapi, cur, locked=locked, tenant=tenant) if own else None
            try:
                if locked:
                    d.lock(cur, tenant)
                if head is None:
                    cur.execute(d.head_sql, (tenant,))
                    head = cur.fetchone()
                row = self._row_after(head, tenant, fields)
                cur.execute(d.insert_sql, row)
                if own:
                    d.commit(dbapi, cur)
            except Exception as exc:
                self._heads.pop(tenant, None)
                if own:
                    d.rollback(dbapi)
                    if d.lost_race(exc):
                        continue
                raise
            finally:
                cur.close()
                if own:
                    d.end(dbapi, saved)
            if own:
                self._heads[tenant] = (row.seq, row.hash)
            return row
        raise AuditError(f"audit append for tenant {tenant!r} lost {len(attempts)} races in a row")

    def _row_after(
        self, head: tuple[Any, ...] | None, tenant: str, fields: tuple[str, str, str, str, str]
    ) -> ChainRow:
        if head is None or head[0] is None:
            return self._row(tenant, 1, GENESIS_HASH, fields)
        return self._row(tenant, head[0] + 1, head[1], fields)

    def events(self, *, action: str | None = None, limit: int | None = None) -> list[AuditEvent]:
        """Return the current tenant's events in sequence order, optionally of one action."""
        d = self._dialect
        sql = (
            d.chain_sql.replace(" ORDER BY", f" AND action = {d.mark} ORDER BY")
            if action
            else (d.chain_sql)
        )
        params: tuple[Any, ...] = (current_tenant(), action) if action else (current_tenant(),)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.engine.connect() as conn:
            rows = d.query(conn.connection.driver_connection, sql, params)
        return [AuditEvent.from_row(r) for r in rows]

    def verify(
        self,
        tenant: str | None = None,
        *,
        connection: Connection | None = None,
        checkpoint: CheckpointSource | None = None,
        public_key: VerifyKey | None = None,
    ) -> VerifyResult:
        """Verify one tenant's chain, or every tenant's when ``tenant`` is None.

        Returns a :class:`VerifyResult` naming the first break; it does not raise for a break
        (call ``raise_for_break()`` for that). With ``connection``, reads inside the caller's
        transaction (and sees its uncommitted changes); otherwise in one read snapshot.

        Without ``checkpoint`` this proves each chain consistent with itself and its recorded
        head: someone able to disable the triggers can rewrite events and recompute every hash
        and head, cut a tail and rewind its head, or delete a tenant's events and head together,
        and the result is still ``ok``. ``checkpoint`` (a file or stream of checkpoint lines,
        or :class:`Checkpoint` objects; see :meth:`checkpoint`) anchors the heads outside the
        database: every checkpoint must be signed by ``public_key`` (default: the PEM file named
        by ``$RELIABILITY_AUDIT_VERIFY_KEY``, else :class:`ConfigurationError`), and any rewrite,
        truncation or deletion of what they signed is a break. Raises
        :class:`~pytest_reliability.errors.AuditCheckpointError` for a checkpoint that is
        malformed or does not verify.
        """
        from pytest_reliability.audit._verify import load_checkpoints, verify_database

        if tenant is not None:
            validate_tenant_id(tenant)
        checkpoints = [] if checkpoint is None else load_checkpoints(checkpoint, public_key)
        try:
            if connection is not None:
                return verify_database(self._dialect, connection, tenant, checkpoints)
            with self.engine.connect() as conn:
                if self._dialect.mark == "%s":
                    # One snapshot for the heads and every chain: a concurrent append must not
                    # look like an event past its head.
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    return verify_database(self._dialect, conn, tenant, checkpoints)
        except DBAPIError as exc:
            raise StoreUnavailable(f"audit verify could not read the log: {exc.orig}") from exc

    def checkpoint(
        self,
        destination: CheckpointDestination,
        *,
        key: SigningKey | None = None,
        tenant: str | None = None,
    ) -> Checkpoint:
        """Sign the current heads (every tenant's, or one) and write them to ``destination``.

        ``destination`` is a file path (one line appended and fsynced) or a text stream (one
        line written and flushed, e.g. ``sys.stdout`` for a log shipper). ``key`` is an Ed25519
        private key (default: the PEM file named by ``$RELIABILITY_AUDIT_SIGNING_KEY``). Keep
        the key and the checkpoints where whoever controls the database cannot reach them.
        """
        from pytest_reliability.audit._checkpoint import (
            load_signing_key,
            read_heads,
            sign_heads,
            write_checkpoint,
        )

        if tenant is not None:
            validate_tenant_id(tenant)
        signing_key = key if key is not None else load_signing_key()
        try:
            with self.engine.connect() as conn:
                heads = read_heads(self._dialect, conn, tenant)
        except DBAPIError as exc:
            raise StoreUnavailable(
                f"audit checkpoint could not read the heads: {exc.orig}"
            ) from exc
        signed = sign_heads(heads, key=signing_key, now=self._clock.now(), tenant=tenant)
        write_checkpoint(signed, destination)
        return signed


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
            checked, broken = verify_tenant(t, rows, head, RowsLookup(rows))
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
