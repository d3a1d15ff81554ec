"""The SQL store (SQLite file or PostgreSQL): one locked transaction per decision.

Each decision takes its rows with ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING data``: the
row is created if new, and in either case locked (PostgreSQL row lock; SQLite's write lock,
taken at ``BEGIN IMMEDIATE``) until the transaction commits, so two concurrent decisions on one
subject run one after the other and no increment is lost. Rows are locked in key order, so two
decisions that need the same two rows (a subject and an account) cannot deadlock. The transition
runs in Python between the read and the write; an audited step adds its outbox record
(``abuse_outbox``) in the same transaction, which is committed before the decision is returned.

Any engine works (see :mod:`pytest_reliability._sql_bounds`); every call is bounded by
``timeout`` seconds and fails closed with :class:`~pytest_reliability.errors.AbuseStoreUnavailable`.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Sequence
from typing import Any, final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pytest_reliability._sql_bounds import (
    DEFAULT_STORE_TIMEOUT,
    PG_CONNECT_DEFAULTS,
    Deadline,
    bound_engine,
    check_timeout,
    store_connection,
    store_transaction,
)
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.errors import AbuseStoreUnavailable, ConfigurationError
from pytest_reliability.security.abuse_protection._auditing import (
    OUTBOX_CAP,
    needs_record,
    outbox_record,
)
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._store import RowKey
from pytest_reliability.security.abuse_protection._tables import abuse_outbox as ob
from pytest_reliability.security.abuse_protection._tables import abuse_state as t
from pytest_reliability.security.abuse_protection._transition import Outcome, Params, transition

__all__ = ["SqlAbuseStore"]

_TAKE = sa.text(
    "INSERT INTO abuse_state (tenant_id, kind, name, data, expires_ms) "
    "VALUES (:tenant, :kind, :name, '{}', 0) "
    "ON CONFLICT (tenant_id, kind, name) DO UPDATE SET kind = excluded.kind "
    "RETURNING data"
)
_PUT = sa.text(
    "UPDATE abuse_state SET data = :data, expires_ms = :expires, block_until_ms = :block "
    "WHERE tenant_id = :tenant AND kind = :kind AND name = :name"
)

_LEASE = sa.text(
    "INSERT INTO abuse_state (tenant_id, kind, name, data, expires_ms) "
    "VALUES ('', 'o', 'flush', :owner, :until) "
    "ON CONFLICT (tenant_id, kind, name) DO UPDATE SET data = excluded.data, "
    "expires_ms = excluded.expires_ms "
    "WHERE abuse_state.expires_ms <= :now OR abuse_state.data = excluded.data "
    "RETURNING data"
)
_RELEASE = sa.text(
    "DELETE FROM abuse_state WHERE tenant_id = '' AND kind = 'o' AND name = 'flush' "
    "AND data = :owner"
)


def _unavailable(exc: Exception, deadline: Deadline | None = None) -> AbuseStoreUnavailable:
    if deadline is not None and deadline.fired:
        return AbuseStoreUnavailable(
            f"abuse store did not answer within {deadline.timeout} s (client-side deadline)"
        )
    detail = exc.orig if isinstance(exc, DBAPIError) else exc
    return AbuseStoreUnavailable(f"abuse store unavailable: {detail!r}")


def _decode(text: str) -> dict[str, Any]:
    try:
        row = json.loads(text)
    except ValueError as exc:
        raise AbuseStoreUnavailable(f"abuse store row is not JSON: {exc}") from None
    if not isinstance(row, dict):
        raise AbuseStoreUnavailable("abuse store row is not a JSON object")
    return row


@final
class SqlAbuseStore:
    """Abuse state in the ``abuse_state`` table of ``engine`` (SQLite or PostgreSQL)."""

    __slots__ = ("_owns_engine", "engine", "outbox_cap", "timeout")

    def __init__(
        self,
        engine: Engine,
        *,
        ensure_schema: bool = True,
        timeout: float = DEFAULT_STORE_TIMEOUT,
        outbox_cap: int = OUTBOX_CAP,
        _owns: bool = False,
    ) -> None:
        if isinstance(outbox_cap, bool) or not isinstance(outbox_cap, int) or outbox_cap < 1:
            raise ConfigurationError(f"outbox_cap {outbox_cap!r}: need a whole number >= 1")
        self.outbox_cap = outbox_cap
        """Outbox records kept at most (see ``OUTBOX_CAP``)."""
        self.engine = engine
        self.timeout = check_timeout(timeout)
        """Seconds each store call may take before failing closed (default 5)."""
        self._owns_engine = _owns
        bound_engine(engine, self.timeout)
        if ensure_schema:
            try:
                create_schema(engine)
            except DBAPIError as exc:
                raise _unavailable(exc) from exc

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ensure_schema: bool = True,
        timeout: float = DEFAULT_STORE_TIMEOUT,
        outbox_cap: int = OUTBOX_CAP,
        **engine_options: Any,
    ) -> SqlAbuseStore:
        """Create the store on a new engine for ``url`` (see
        :func:`~pytest_reliability.db.make_engine`); PostgreSQL connections also get a
        server-side ``statement_timeout`` of ``timeout``."""
        if url.startswith(("postgresql", "postgres")):
            connect = max(2, math.ceil(check_timeout(timeout)))  # libpq: whole seconds, >= 2
            args = {**PG_CONNECT_DEFAULTS, "connect_timeout": connect}
            args |= engine_options.pop("connect_args", {})
            given = args.get("options") or sa.engine.make_url(url).query.get("options") or ""
            given = given if isinstance(given, str) else " ".join(given)
            timeout_ms = int(check_timeout(timeout) * 1000)
            args["options"] = f"-c statement_timeout={timeout_ms} {given}".strip()
            engine_options["connect_args"] = args
        engine = make_engine(url, **engine_options)
        return cls(
            engine,
            ensure_schema=ensure_schema,
            timeout=timeout,
            outbox_cap=outbox_cap,
            _owns=True,
        )

    def apply(
        self,
        tenant: str,
        keys: Sequence[RowKey],
        now_ms: int,
        checks: Sequence[Check],
        params: Params,
        *,
        force: tuple[Any, ...] | None = None,
        consume: bool = True,
        record: tuple[str, str] | None = None,
    ) -> Outcome:
        """Lock the rows, run the transition, write them back (and the outbox record of an
        audited step); one committed transaction."""
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline) as conn:
                rows: dict[RowKey, dict[str, Any]] = {}
                for kind, name in sorted(keys):  # one lock order for every writer
                    data = conn.execute(
                        _TAKE, {"tenant": tenant, "kind": kind, "name": name}
                    ).scalar_one()
                    rows[(kind, name)] = _decode(data)
                ordered = [rows[k] for k in keys]
                out = transition(ordered, now_ms, checks, params, force=force, consume=consume)
                if record is not None and needs_record(out, force):
                    self._record(conn, tenant, keys[0][1], now_ms, record, force, out)
                conn.execute(
                    _PUT,
                    [
                        {
                            "tenant": tenant,
                            "kind": kind,
                            "name": name,
                            "data": json.dumps(row, separators=(",", ":")),
                            "expires": row["x"],
                            "block": row["until"] if row.get("tier") == 3 else None,
                        }
                        for (kind, name), row in zip(keys, ordered, strict=True)
                    ],
                )
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc
        return out

    def _record(
        self,
        conn: sa.Connection,
        tenant: str,
        subject: str,
        now_ms: int,
        context: tuple[str, str],
        force: tuple[Any, ...] | None,
        out: Outcome,
    ) -> None:
        at_cap = sa.select(ob.c.seq).order_by(ob.c.seq).offset(self.outbox_cap - 1).limit(1)
        if conn.execute(at_cap).first() is not None:
            # Raised inside the transaction: it rolls back, the step changes nothing.
            raise AbuseStoreUnavailable(
                f"abuse audit outbox is full ({self.outbox_cap} records): an audited step is "
                "refused until the audit log takes them"
            )
        record_id = secrets.token_hex(12)
        text = outbox_record(record_id, tenant, subject, now_ms, context, force, out)
        conn.execute(sa.insert(ob).values(record_id=record_id, record=text))

    def outbox_peek(self, limit: int) -> list[tuple[str, str]]:
        """Pending outbox records, oldest first."""
        deadline = Deadline(self.timeout)
        query = sa.select(ob.c.record_id, ob.c.record).order_by(ob.c.seq).limit(limit)
        try:
            with store_connection(self.engine, deadline) as conn:
                return [(r.record_id, r.record) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc

    def outbox_delete(self, record_id: str) -> None:
        """Delete one delivered record."""
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline) as conn:
                conn.execute(sa.delete(ob).where(ob.c.record_id == record_id))
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc

    def outbox_lease(self, owner: str, lease_ms: int) -> bool:
        """Take the flush lease (a row in ``abuse_state``) unless another owner holds it."""
        deadline = Deadline(self.timeout)
        now = int(time.time() * 1000)  # wall time: leases are compared across processes
        try:
            with store_transaction(self.engine, deadline) as conn:
                got = conn.execute(
                    _LEASE, {"owner": owner, "until": now + lease_ms, "now": now}
                ).first()
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc
        return got is not None

    def outbox_release(self, owner: str) -> None:
        """Delete the lease row if ``owner`` holds it."""
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline) as conn:
                conn.execute(_RELEASE, {"owner": owner})
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc

    def read(self, tenant: str, subject: str) -> dict[str, Any] | None:
        """Return the subject's row, or None."""
        deadline = Deadline(self.timeout)
        query = sa.select(t.c.data).where(
            t.c.tenant_id == tenant, t.c.kind == "s", t.c.name == subject
        )
        try:
            with store_connection(self.engine, deadline) as conn:
                data = conn.execute(query).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc
        return None if data is None else _decode(data)

    def expired_blocks(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """Subjects whose stored block ended by ``now_ms`` (oldest first)."""
        deadline = Deadline(self.timeout)
        query = (
            sa.select(t.c.tenant_id, t.c.name)
            .where(t.c.block_until_ms <= now_ms, t.c.kind == "s")
            .order_by(t.c.block_until_ms)
            .limit(limit)
        )
        try:
            with store_connection(self.engine, deadline) as conn:
                return [(r.tenant_id, r.name) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc

    def purge(self, now_ms: int) -> int:
        """Delete rows past their retention (a blocked row outlives its block)."""
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline) as conn:
                result = conn.execute(sa.delete(t).where(t.c.expires_ms <= now_ms))
        except SQLAlchemyError as exc:
            raise _unavailable(exc, deadline) from exc
        return int(result.rowcount or 0)

    def close(self) -> None:
        """Dispose of the engine if the store made it."""
        if self._owns_engine:
            self.engine.dispose()
