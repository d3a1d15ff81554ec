"""The SQL kill switch store: SQLite polls; PostgreSQL adds LISTEN/NOTIFY."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from pytest_reliability._sql_bounds import (
    DEFAULT_STORE_TIMEOUT,
    Deadline,
    bound_engine,
    check_timeout,
    store_connection,
    store_transaction,
)
from pytest_reliability.db import is_postgres
from pytest_reliability.errors import StoreUnavailable
from pytest_reliability.ops._tables import ops_kill_switches
from pytest_reliability.ops.kill_switch._model import AuditHook, SwitchRecord
from pytest_reliability.ops.kill_switch._store_common import (
    LISTEN_TIMEOUT,
    RECONNECT_DELAY,
    check_namespace,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# A bounded connect, and keepalives so a peer that vanished without a reset (a black-holed
# network) is noticed in about 10 s rather than the kernel's two hours.
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


@final
class SqlStore:
    """Switches in ``ops_kill_switches`` on SQLite (polled) or PostgreSQL (LISTEN/NOTIFY + poll).

    On PostgreSQL the state change and ``pg_notify`` commit in one transaction, so a listener is
    woken only for a committed change. The channel is derived from the database, schema and
    namespace (channels are database-wide, schemas are not), unless ``channel`` is given.

    Any engine works (see :mod:`pytest_reliability._sql_bounds`): a flip is committed explicitly
    before it is acknowledged, and every read and write is bounded by ``timeout`` seconds (on
    PostgreSQL a client-side deadline that holds against a frozen server); a read past it leaves
    the switches to go stale (engaged), a flip past it raises :class:`StoreUnavailable`.
    """

    shared = True

    def __init__(
        self,
        engine: Engine,
        *,
        namespace: str,
        channel: str | None = None,
        timeout: float = DEFAULT_STORE_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.timeout = check_timeout(timeout)
        bound_engine(engine, self.timeout)
        self.namespace = check_namespace(namespace)
        self.kind = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"
        self._channel = channel
        self._lock = threading.Lock()
        self.schema_ready = False

    def channel(self, conn: Connection | None = None) -> str:
        """Return the NOTIFY channel (asks the database once when derived)."""
        with self._lock:
            if self._channel is not None:
                return self._channel
        if conn is None:
            with self.engine.connect() as c:
                return self.channel(c)
        row = conn.execute(sa.text("SELECT current_database(), current_schema()")).one()
        return self._derive(f"{row[0]}/{row[1]}")

    def _derive(self, where: str) -> str:
        digest = hashlib.sha256(f"{where}/{self.namespace}".encode()).hexdigest()[:24]
        with self._lock:
            self._channel = self._channel or f"reliability_ks_{digest}"
            return self._channel

    def read_all(self) -> Mapping[str, SwitchRecord]:
        """Return every record of the namespace."""
        if not self.schema_ready:
            self.ensure_schema()
        t = ops_kill_switches
        query = sa.select(t.c.name, t.c.engaged, t.c.reason, t.c.actor, t.c.changed_at, t.c.version)
        with store_connection(self.engine, Deadline(self.timeout)) as conn:
            rows = conn.execute(query.where(t.c.namespace == self.namespace)).all()
        return {
            r[0]: SwitchRecord(r[0], bool(r[1]), r[2], r[3], float(r[4]), int(r[5])) for r in rows
        }

    def write(self, record: SwitchRecord, audit: AuditHook) -> SwitchRecord:
        """Upsert ``record``, audit and notify in one transaction."""
        t = ops_kill_switches
        values = {
            "namespace": self.namespace,
            "name": record.name,
            "engaged": record.engaged,
            "reason": record.reason,
            "actor": record.actor,
            "changed_at": record.changed_at,
            "version": 1,
        }
        deadline = Deadline(self.timeout)
        try:
            with store_transaction(self.engine, deadline) as conn:
                postgres = is_postgres(conn)
                insert = (pg_insert if postgres else sqlite_insert)(t).values(**values)
                update: dict[str, Any] = {
                    k: insert.excluded[k] for k in ("engaged", "reason", "actor", "changed_at")
                }
                update["version"] = t.c.version + 1
                stmt = insert.on_conflict_do_update(
                    index_elements=[t.c.namespace, t.c.name], set_=update
                ).returning(t.c.version)
                version = int(conn.execute(stmt).scalar_one())
                stored = replace(record, version=version)
                audit(conn)
                if postgres:
                    payload = json.dumps(stored.as_json())
                    conn.execute(
                        sa.text("SELECT pg_notify(:ch, :p)"),
                        {"ch": self.channel(conn), "p": payload},
                    )
        except SQLAlchemyError as exc:
            late = f" (no answer within {self.timeout} s)" if deadline.fired else ""
            raise StoreUnavailable(f"kill switch store write failed{late}: {exc}") from exc
        return stored

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """LISTEN on PostgreSQL from a dedicated autocommit connection; reconnect on failure."""
        if self.kind != "postgresql":
            return
        import psycopg

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, **PG_CONNECT_ARGS) as conn:
                    row = conn.execute("SELECT current_database(), current_schema()").fetchone()
                    assert row is not None  # a SELECT without FROM always returns one row
                    channel = self._channel or self._derive(f"{row[0]}/{row[1]}")
                    conn.execute(f'LISTEN "{channel}"')
                    # Anything flipped while we were not listening is caught by this re-read.
                    wake()
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TIMEOUT):
                            wake()
            except Exception:  # whatever broke the connection: pause, reconnect; polling covers
                stop.wait(RECONNECT_DELAY)

    def ensure_schema(self) -> None:
        """Create the package's tables (idempotent); raises when the database is unreachable."""
        from pytest_reliability.db import create_schema

        create_schema(self.engine)
        self.schema_ready = True

    def close(self) -> None:
        """Dispose of the engine's pooled connections."""
        self.engine.dispose()


def sql_store(
    url_or_engine: Any,
    *,
    namespace: str,
    channel: str | None,
    timeout: float = DEFAULT_STORE_TIMEOUT,
) -> SqlStore:
    """Build a :class:`SqlStore` from a SQLAlchemy URL or engine and create its table.

    A database that cannot be reached now is not an error here: the switches start engaged
    (fail closed) and the table is created on the first successful read.
    """
    from sqlalchemy.engine import Engine

    from pytest_reliability.db import make_engine, normalize_url

    if isinstance(url_or_engine, Engine):
        engine = url_or_engine
    elif normalize_url(url_or_engine).get_backend_name() == "postgresql":
        connect = max(2, math.ceil(check_timeout(timeout)))  # libpq: whole seconds, >= 2
        engine = make_engine(
            url_or_engine, connect_args={**PG_CONNECT_ARGS, "connect_timeout": connect}
        )
    else:
        engine = make_engine(url_or_engine)
    store = SqlStore(engine, namespace=namespace, channel=channel, timeout=timeout)
    with contextlib.suppress(SQLAlchemyError):
        store.ensure_schema()
    return store
