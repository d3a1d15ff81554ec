"""Engines from URLs: SQLite set up for concurrent use, PostgreSQL through psycopg 3."""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from pytest_reliability.errors import ConfigurationError

DATABASE_URL_ENV = "RELIABILITY_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///reliability.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000

# The execution option read by the SQLite "begin" listener below.
_BEGIN_OPTION = "reliability_sqlite_begin"

BeginMode = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"]

# SQLite engines built by make_engine: their "begin" listener reads _BEGIN_OPTION. Any other
# SQLite engine leaves BEGIN to the sqlite3 module, and begin_immediate issues its own.
_configured: weakref.WeakSet[Engine] = weakref.WeakSet()


def database_url_from_env() -> str:
    """Return ``RELIABILITY_DATABASE_URL``, or the default SQLite file in the working directory."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    return url or DEFAULT_DATABASE_URL


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pin PostgreSQL to the psycopg 3 driver.

    Raises :class:`ConfigurationError` for a malformed URL, an unsupported scheme, or a driver
    whose extra is not installed (naming the extra).
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise ConfigurationError(f"malformed database URL {str(url)!r}: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ConfigurationError(
                f"PostgreSQL driver {driver!r} is not supported; use postgresql+psycopg://"
            )
        try:
            import psycopg  # noqa: F401  # probe only: the dialect imports it again
        except ImportError:
            raise ConfigurationError(
                "PostgreSQL needs psycopg 3: pip install 'pytest-reliability[postgres]'"
            ) from None
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigurationError(f"SQLite driver {driver!r} is not supported; use sqlite://")
        return parsed.set(drivername="sqlite+pysqlite")
    raise ConfigurationError(
        f"unsupported database URL scheme {parsed.drivername!r}: "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
    )


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (default: :func:`database_url_from_env`).

    SQLite gets WAL journaling with ``synchronous = FULL`` (a committed transaction survives a
    power loss or an OS crash; ``NORMAL`` would only keep the file consistent), a busy timeout,
    foreign keys and real transactions whose ``BEGIN`` mode the caller can choose (see
    :func:`begin_immediate`); an in-memory SQLite database is shared by every connection of the
    engine. Extra keyword arguments go to :func:`sqlalchemy.create_engine`.

    The modules do not need these settings (see :func:`check_engine`): they are what a service
    gets when it has no engine of its own.
    """
    parsed = normalize_url(url if url is not None else database_url_from_env())
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine, wal=not memory)
        _configured.add(engine)
        return engine
    # No pool_pre_ping by default: it costs a round trip per checkout on every audited action,
    # and a dead pooled connection already surfaces as StoreUnavailable and is discarded.
    return sa.create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
                # FULL: an acknowledged write must survive a power loss, not only stay consistent.
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(bind: Engine | Connection) -> bool:
    """Return whether ``bind`` talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"


def is_sqlite(bind: Engine | Connection) -> bool:
    """Return whether ``bind`` talks to SQLite."""
    return bind.dialect.name == "sqlite"


@contextmanager
def begin_immediate(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that takes SQLite's write lock at ``BEGIN`` (a plain one elsewhere).

    On SQLite, a deferred transaction that reads and then writes can fail with "database is
    locked" when another writer got there first; ``BEGIN IMMEDIATE`` serialises the writers up
    front and lets the busy timeout queue them. Works with any SQLite engine: one from
    :func:`make_engine` through its ``BEGIN`` listener, any other by issuing ``BEGIN IMMEDIATE``
    on the driver connection before the sqlite3 module would begin lazily at the first write.
    """
    with engine.connect() as conn:
        if not is_sqlite(conn):
            with conn.begin():
                yield conn
            return
        if engine in _configured:
            conn = conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn
            return
        with conn.begin():
            dbapi: Any = conn.connection.driver_connection
            if not dbapi.in_transaction:
                dbapi.execute("BEGIN IMMEDIATE")
            yield conn


def advisory_lock_key(name: str) -> int:
    """Map ``name`` to a signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def pg_advisory_xact_lock(conn: Connection, name: str) -> None:
    """Take the transaction-scoped PostgreSQL advisory lock named ``name``."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_lock_key(name)})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (``expire_on_commit`` off)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
