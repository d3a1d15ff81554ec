"""The SQL store (SQLite file or PostgreSQL): each claim, takeover and completion one statement.

A claim is ``INSERT ... ON CONFLICT DO NOTHING``; when the key exists, the row is read and an
expired lease is taken over by ``UPDATE ... WHERE token = :old`` (so of two workers racing for it,
exactly one matches). Completion is ``UPDATE ... WHERE token = :mine AND state = 'IN_PROGRESS'``
inside the caller's transaction, so the caller's own rows and the COMPLETED record commit or roll
back together. On SQLite the store's own transactions start with ``BEGIN IMMEDIATE``; the handler's
transaction starts deferred, so a handler holds the write lock only from its first write.

Any engine works (plain ``create_engine`` or ``make_engine``, any pool; see
:mod:`pytest_reliability._sql_bounds`): every write is committed explicitly before it is
acknowledged, and every store call is bounded by ``timeout`` seconds (on PostgreSQL a client-side
deadline that also holds against a frozen server), after which it fails closed with
:class:`IdempotencyUnavailable`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pytest_reliability._sql_bounds import (
    DEFAULT_STORE_TIMEOUT,
    PG_CONNECT_DEFAULTS,
    Deadline,
    bound_engine,
    check_timeout,
    handler_transaction,
    store_connection,
    store_transaction,
)
from pytest_reliability.db import create_schema, is_postgres, is_sqlite, make_engine
from pytest_reliability.errors import IdempotencyUnavailable, LeaseLost
from pytest_reliability.idempotency._model import Claim, Record, Scope, State, decode_record
from pytest_reliability.idempotency._sql_statements import (
    _CLAIM_ROUNDS,
    _COLUMNS,
    _FINISH,
    _PG_CLAIM,
    _PG_FINISH,
    _pk,
)
from pytest_reliability.idempotency._store import Deferred
from pytest_reliability.idempotency._tables import idempotency_records as t

__all__ = ["SqlStore"]

# On SQLite a takeover of an expired lease waits this long for the write lock: a handler that
# holds it is alive and writing, so the duplicate answers "in progress" rather than queueing.
_TAKEOVER_LOCK_WAIT_MS = 200
_TAKEOVER_RETRY_AFTER_MS = 1000


def _unavailable(exc: DBAPIError, deadline: Deadline | None = None) -> IdempotencyUnavailable:
    if deadline is not None and deadline.fired:
        return IdempotencyUnavailable(
            f"idempotency store did not answer within {deadline.timeout} s "
            f"(client-side deadline): {exc.orig!r}"
        )
    return IdempotencyUnavailable(f"idempotency store unavailable: {exc.orig!r}")


@final
class SqlStore:
    """Idempotency records in the ``idempotency_records`` table of ``engine``.

    Share ``engine`` with the application so a handler's rows commit with the record.
    """

    __slots__ = ("_autocommit", "_insert", "_owns_engine", "engine", "timeout")

    def __init__(
        self,
        engine: Engine,
        *,
        ensure_schema: bool = True,
        timeout: float = DEFAULT_STORE_TIMEOUT,
        _owns: bool = False,
    ) -> None:
        self.engine = engine
        self.timeout = check_timeout(timeout)
        """Seconds each store call may take before failing closed (default 5)."""
        self._owns_engine = _owns
        bound_engine(engine, self.timeout)
        dialect = postgresql if is_postgres(engine) else sqlite
        self._insert = dialect.insert(t).on_conflict_do_nothing().returning(t.c.fence)
        # On PostgreSQL a first claim is one atomic statement: no BEGIN/COMMIT round trips.
        # (SQLite keeps BEGIN IMMEDIATE: its write lock is what orders the writers.)
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if is_postgres(engine) else None
        )
        if ensure_schema:
            try:
                create_schema(engine)
            except DBAPIError as exc:
                raise _unavailable(exc) from exc
            with self._begin():
                pass  # refuses an engine that cannot commit a store write (ConfigurationError)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ensure_schema: bool = True,
        timeout: float = DEFAULT_STORE_TIMEOUT,
        **engine_options: Any,
    ) -> SqlStore:
        """Create the store on a new engine for ``url`` (see :func:`~pytest_reliability.db.make_engine`).

        The pool does not ping connections before use (``pool_pre_ping=False``, one round trip
        saved per transaction): after a database restart the first call on a dead connection
        fails closed with :class:`IdempotencyUnavailable` and the pool reconnects. Pass
        ``pool_pre_ping=True`` to trade that round trip for the failed call. On PostgreSQL the
        connections also get a server-side ``statement_timeout`` of ``timeout``.
        """  # noqa: E501
        engine_options.setdefault("pool_pre_ping", False)
        if url.startswith(("postgresql", "postgres")):
            connect = max(2, math.ceil(check_timeout(timeout)))  # libpq: whole seconds, >= 2
            args = {**PG_CONNECT_DEFAULTS, "connect_timeout": connect}
            args |= engine_options.pop("connect_args", {})
            # connect_args replace the URL's own ``options`` (a search_path, say): keep them.
            given = args.get("options") or sa.engine.make_url(url).query.get("options") or ""
            given = given if isinstance(given, str) else " ".join(given)
            timeout_ms = int(check_timeout(timeout) * 1000)
            args["options"] = f"-c statement_timeout={timeout_ms} {given}".strip()  # theirs wins
            engine_options["connect_args"] = args
        engine = make_engine(url, **engine_options)
        return cls(engine, ensure_schema=ensure_schema, timeout=timeout, _owns=True)

    @contextmanager
    def _begin(self, lock_wait_ms: int | None = None) -> Iterator[Connection]:
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline, lock_wait_ms=lock_wait_ms) as conn:
                yield conn
        except DBAPIError as exc:
            raise _unavailable(exc, deadline) from exc

    def claim(
        self,
        scope: Scope,
        fingerprint: str,
        *,
        token: str,
        now_ms: int,
        lease_ms: int,
        retention_ms: int,
        on_takeover: Callable[[Any, int], None] | None = None,
    ) -> Claim:
        """Acquire the key or return its record (see :class:`IdempotencyStore`)."""
        fresh = {
            "state": State.IN_PROGRESS.value,
            "fingerprint": fingerprint,
            "token": token,
            "fence": 1,
            "lease_expires_ms": now_ms + lease_ms,
            "expires_ms": now_ms + retention_ms,
            "response": None,
            "error": None,
            "created_ms": now_ms,
        }
        row = {"tenant_id": scope.tenant, "operation": scope.operation, "key_hash": scope.key_hash}
        if self._autocommit is not None:
            deadline = Deadline(self.timeout)
            try:
                lease, expires = now_ms + lease_ms, now_ms + retention_ms
                args = (scope.tenant, scope.operation, scope.key_hash, fingerprint, token)
                args_all = (*args, lease, expires, now_ms)
                with store_connection(self._autocommit, deadline) as conn:
                    if conn.exec_driver_sql(_PG_CLAIM, args_all).first() is not None:
                        return Claim(acquired=True, token=token, fence=1)
            except DBAPIError as exc:
                raise _unavailable(exc, deadline) from exc
        if is_sqlite(self.engine):
            # Look before taking SQLite's write lock: a first delivery holds that lock for as long
            # as its handler runs, and a duplicate that only needs to hear "in progress", "replay"
            # or "mismatch" should not queue behind it. WAL readers never wait for the writer,
            # and a settled answer read here cannot be overtaken: completed and failed records
            # stay until retention ends, and a live lease only ends by completing or expiring.
            seen = self.get(scope)
            if (
                seen is not None
                and seen.expires_ms > now_ms
                and (
                    seen.fingerprint != fingerprint
                    or seen.state is not State.IN_PROGRESS
                    or seen.lease_expires_ms > now_ms
                )
            ):
                return Claim(acquired=False, record=seen)
            if seen is not None and seen.expires_ms > now_ms and seen.state is State.IN_PROGRESS:
                # An expired lease: take it over only if the write lock comes quickly. A handler
                # holding it is alive and writing: the duplicate hears "in progress" now rather
                # than after the busy timeout.
                try:
                    with self._begin(lock_wait_ms=_TAKEOVER_LOCK_WAIT_MS) as conn:
                        return self._claim_in(conn, scope, row, fresh, token, now_ms, lease_ms,
                                              on_takeover)  # fmt: skip
                except IdempotencyUnavailable as exc:
                    if "locked" not in str(exc):
                        raise
                    busy = replace(seen, lease_expires_ms=now_ms + _TAKEOVER_RETRY_AFTER_MS)
                    return Claim(acquired=False, record=busy)
        with self._begin() as conn:
            return self._claim_in(conn, scope, row, fresh, token, now_ms, lease_ms, on_takeover)

    def _claim_in(
        self,
        conn: Connection,
        scope: Scope,
        row: dict[str, Any],
        fresh: dict[str, Any],
        token: str,
        now_ms: int,
        lease_ms: int,
        on_takeover: Callable[[Any, int], None] | None,
    ) -> Claim:
        fingerprint = fresh["fingerprint"]
        for _ in range(_CLAIM_ROUNDS):
            if conn.execute(self._insert, {**row, **fresh}).first() is not None:
                return Claim(acquired=True, token=token, fence=1)
            found = conn.execute(sa.select(*_COLUMNS).where(_pk(scope))).first()
            if found is None:
                continue
            record = decode_record(tuple(found))
            guard = sa.and_(_pk(scope), t.c.token == record.token)
            if record.expires_ms <= now_ms:
                # Past retention: the key is free again, whatever the old record held.
                if conn.execute(t.update().where(guard).values(**fresh)).rowcount == 1:
                    return Claim(acquired=True, token=token, fence=1)
                continue
            if (
                record.fingerprint != fingerprint
                or record.state is not State.IN_PROGRESS
                or record.lease_expires_ms > now_ms
            ):
                return Claim(acquired=False, record=record)
            fence = record.fence + 1
            taken = conn.execute(
                t.update()
                .where(guard, t.c.state == State.IN_PROGRESS.value)
                .values(token=token, fence=fence, lease_expires_ms=now_ms + lease_ms)
            ).rowcount
            if taken == 1:
                if on_takeover is not None:
                    on_takeover(conn, fence)
                return Claim(acquired=True, token=token, fence=fence, takeover=True)
        raise IdempotencyUnavailable("idempotency key is contended past the claim limit")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The transaction shared by the handler's rows and the completion (deferred on SQLite:
        the write lock is taken by the first write). A failure to open or commit it, or a commit
        past ``timeout``, is :class:`IdempotencyUnavailable`; errors raised by the body pass
        through untouched after the rollback."""
        body_failed = False
        deadline = Deadline(self.timeout)
        try:
            with handler_transaction(self.engine, deadline) as conn:
                try:
                    yield conn
                except BaseException:
                    body_failed = True
                    raise
        except DBAPIError as exc:
            if body_failed:
                raise
            raise _unavailable(exc, deadline) from exc

    def complete(
        self,
        scope: Scope,
        token: str,
        response: str,
        *,
        now_ms: int,
        retention_ms: int,
        handle: Any,
        deferred: Sequence[Deferred] = (),
    ) -> None:
        """Complete inside ``handle`` (the transaction's connection); LeaseLost if not held."""
        conn: Connection = handle
        done_at = now_ms + retention_ms
        deadline = Deadline(self.timeout)
        try:
            deadline.arm(conn)
            if self._autocommit is not None:  # PostgreSQL: driver SQL, no compilation
                args = (
                    State.COMPLETED.value,
                    response,
                    None,
                    done_at,
                    *self._key_args(scope, token),
                )
                done = conn.exec_driver_sql(_PG_FINISH, args).rowcount
            else:
                params = self._held(scope, token)
                params |= {"p_state": State.COMPLETED.value, "p_response": response}
                params |= {"p_error": None, "p_expires": done_at}
                done = conn.execute(_FINISH, params).rowcount
        except DBAPIError as exc:
            raise _unavailable(exc, deadline) from exc
        finally:
            deadline.disarm()
        if done != 1:
            raise LeaseLost("the lease on this key was taken over by another worker")
        for effect in deferred:
            effect(conn)

    @staticmethod
    def _key_args(scope: Scope, token: str) -> tuple[str, str, str, str]:
        return (scope.tenant, scope.operation, scope.key_hash, token)

    @staticmethod
    def _held(scope: Scope, token: str) -> dict[str, Any]:
        return {
            "p_tenant": scope.tenant,
            "p_operation": scope.operation,
            "p_key": scope.key_hash,
            "p_token": token,
        }

    def fail(self, scope: Scope, token: str, error: str, *, now_ms: int, retention_ms: int) -> bool:
        """Store a terminal failure if ``token`` holds the key."""
        params = self._held(scope, token)
        params |= {"p_state": State.FAILED.value, "p_response": None, "p_error": error}
        params["p_expires"] = now_ms + retention_ms
        with self._begin() as conn:
            return bool(conn.execute(_FINISH, params).rowcount == 1)

    def release(self, scope: Scope, token: str) -> bool:
        """Delete the record if ``token`` holds it."""
        with self._begin() as conn:
            held = sa.and_(_pk(scope), t.c.token == token, t.c.state == State.IN_PROGRESS.value)
            return bool(conn.execute(t.delete().where(held)).rowcount == 1)

    def get(self, scope: Scope) -> Record | None:
        """Return the record, or None."""
        deadline = Deadline(self.timeout)
        try:
            with store_connection(self.engine, deadline) as conn:
                found = conn.execute(sa.select(*_COLUMNS).where(_pk(scope))).first()
        except DBAPIError as exc:
            raise _unavailable(exc, deadline) from exc
        return None if found is None else decode_record(tuple(found))

    def purge(self, now_ms: int) -> int:
        """Delete records past retention whose lease is not live."""
        dead = sa.and_(
            t.c.expires_ms <= now_ms,
            sa.or_(t.c.state != State.IN_PROGRESS.value, t.c.lease_expires_ms <= now_ms),
        )
        with self._begin() as conn:
            return int(conn.execute(t.delete().where(dead)).rowcount)

    def close(self) -> None:
        """Dispose of the engine if this store created it."""
        if self._owns_engine:
            self.engine.dispose()
