"""Store transactions on any SQLAlchemy engine: committed explicitly, and bounded in time.

The stores take whatever :class:`~sqlalchemy.engine.Engine` a service already has (plain
``create_engine`` or :func:`~pytest_reliability.db.make_engine`, SQLite or PostgreSQL, any pool)
and rely on no setting only ``make_engine`` applies:

* On SQLite the transaction is opened with an explicit ``BEGIN`` / ``BEGIN IMMEDIATE`` when the
  engine did not open one (the stdlib driver's own transaction handling would otherwise decide),
  and the commit is the driver's ``commit()``, which commits whatever transaction is open. A
  ``sqlite3`` connection with ``autocommit=True`` (Python 3.12+), whose ``commit()`` does nothing,
  is refused with :class:`ConfigurationError`; so is a PostgreSQL connection in autocommit mode,
  where the handler's rows and the record could not commit together.
* On PostgreSQL every store call runs under a client-side deadline: a watchdog thread shuts the
  connection's socket down when the call overruns, so the blocked driver returns at once with an
  error even when the server is frozen (``SIGSTOP`` keeps its kernel's TCP stack answering, so
  keepalives never fire and a server-side ``statement_timeout`` cannot run). New connections get
  ``connect_timeout`` and TCP keepalives when the engine's URL does not set them.
* The deadline's clock starts when the call asks the pool for a connection (:func:`checkout`),
  so it covers the pool's own pre-ping on an engine built with ``pool_pre_ping=True``: the
  engine's dialect pings through :func:`bound_engine`'s wrapper of ``do_ping``, which arms the
  deadline on the connection being pinged while a store call checks it out (the caller's own
  checkouts ping exactly as before). A ping the deadline cut fails the call at once with the
  :class:`~sqlalchemy.exc.DBAPIError` a failed connect raises, instead of the pool's reconnect
  (which on a frozen server would wait out ``connect_timeout`` too); the pool discards the cut
  connection. An engine without pre-ping pays nothing: no ping, no extra round trip.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pytest_reliability.db import begin_immediate
from pytest_reliability.errors import ConfigurationError

__all__ = [
    "DEFAULT_STORE_TIMEOUT",
    "PG_CONNECT_DEFAULTS",
    "Deadline",
    "bound_engine",
    "check_timeout",
    "checkout",
    "handler_transaction",
    "store_connection",
    "store_transaction",
]

DEFAULT_STORE_TIMEOUT = 5.0
"""Seconds a store call may take (connect, statements, commit) before it fails closed."""

PG_CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}
"""libpq settings a store adds to new PostgreSQL connections when the engine has none."""


def check_timeout(timeout: object) -> float:
    """Return ``timeout`` if it is a number of seconds in (0, 300], else ConfigurationError."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise ConfigurationError(f"store timeout {timeout!r}: need 0 < seconds <= 300")
    return float(timeout)


def _connect_timeout(timeout: float) -> int:
    # libpq counts whole seconds and treats anything under 2 as 2.
    return max(2, math.ceil(timeout))


def bound_engine(engine: Engine, timeout: float = DEFAULT_STORE_TIMEOUT) -> None:
    """Give ``engine``'s new PostgreSQL connections a connect timeout (``timeout``, at least the
    2 s libpq allows) and TCP keepalives, where its URL sets none, and put its pool's pre-ping
    under the deadline of the store call checking a connection out. Once per engine."""
    if engine.dialect.name != "postgresql":
        return
    _bound_pre_ping(engine.dialect)
    if getattr(engine.pool, "_reliability_bound", False):
        return
    defaults = {**PG_CONNECT_DEFAULTS, "connect_timeout": _connect_timeout(timeout)}

    def bound_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        for name, value in defaults.items():
            cparams.setdefault(name, value)

    event.listen(engine, "do_connect", bound_connect)
    engine.pool._reliability_bound = True  # type: ignore[attr-defined]


_TICK = 0.05  # seconds between two looks at the armed calls: a deadline fires within this


class _Watchdog:
    """One daemon thread that cuts the sockets of calls past their deadline.

    It looks every :data:`_TICK` seconds rather than being woken by each call: arming and
    disarming are then a dictionary write under a lock, with no thread switch on the hot path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, int]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def _reset(self) -> None:  # in a forked child: the parent's thread does not exist there
        self.__init__()  # type: ignore[misc]

    def arm(self, fd: int, deadline: float) -> int:
        with self._lock:
            token = next(self._tokens)
            self._entries[token] = (deadline, fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-deadline")
                self._thread.daemon = True
                self._thread.start()
            return token

    def disarm(self, token: int) -> bool:
        """Forget ``token``; False when its deadline already passed and the socket was cut."""
        with self._lock:
            return self._entries.pop(token, None) is not None

    def _run(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            with self._lock:
                for token, (deadline, fd) in list(self._entries.items()):
                    if deadline <= now:
                        # Under the lock: the caller cannot disarm and close this fd meanwhile.
                        del self._entries[token]
                        _cut(fd)


def _cut(fd: int) -> None:
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG._reset)


class Deadline:
    """A client-side bound on the store calls made on one connection (PostgreSQL only)."""

    __slots__ = ("_due", "_token", "fired", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._due: float | None = None
        self._token: int | None = None
        self.fired = False

    def start(self) -> None:
        """Start (or restart) the clock now; until then each arming starts its own."""
        self._due = time.monotonic() + self.timeout

    def _arm_fd(self, fd: int) -> None:
        due = self._due if self._due is not None else time.monotonic() + self.timeout
        self._token = _WATCHDOG.arm(fd, due)

    def arm(self, conn: Connection) -> None:
        """Watch ``conn``: from now on an overrun of the clock cuts its socket."""
        if conn.dialect.name != "postgresql" or self._token is not None:
            return
        self._arm_fd(conn.connection.dbapi_connection.pgconn.socket)  # type: ignore[union-attr]

    def arm_dbapi(self, dbapi_connection: Any) -> None:
        """Watch a driver connection (a psycopg one; others are left unbounded)."""
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is None or self._token is not None:
            return
        self._arm_fd(pgconn.socket)

    def disarm(self) -> None:
        """Stop watching; records in :attr:`fired` whether the deadline cut the call."""
        if self._token is not None:
            self.fired = not _WATCHDOG.disarm(self._token) or self.fired
            self._token = None


# The deadline of the store call whose checkout is running in this thread (or task), if any.
_CHECKING_OUT: ContextVar[Deadline | None] = ContextVar("store_checkout", default=None)


def _bound_pre_ping(dialect: Any) -> None:
    """Wrap ``dialect.do_ping`` (on this dialect object only) so that a store call's checkout
    pings under the call's deadline.

    The pool pings a pooled connection inside ``engine.connect()``, before the connection is
    handed out and before any pool event the store could listen to, so the driver connection is
    first seen here. SQLAlchemy offers no ping event; ``do_ping`` is the dialect's documented
    hook for the ping, and an engine's dialect belongs to that engine (and its
    ``execution_options`` copies) alone.
    """
    if getattr(dialect, "_reliability_ping", False):
        return
    ping = dialect.do_ping
    dbapi_error = dialect.loaded_dbapi.Error

    def do_ping(dbapi_connection: Any) -> bool:
        deadline = _CHECKING_OUT.get()
        if deadline is None:  # not a store call's checkout: the pool's ping, untouched
            return bool(ping(dbapi_connection))
        deadline.arm_dbapi(dbapi_connection)
        try:
            return bool(ping(dbapi_connection))
        except dbapi_error as exc:
            deadline.disarm()
            if not deadline.fired:
                raise  # the pool's own handling: a dead connection is replaced
            # Not a driver error, so the pool does not reconnect (a new connection to a frozen
            # server waits out connect_timeout past the deadline); it discards this one and
            # engine.connect() raises what a failed connect raises.
            raise DBAPIError.instance(
                None, None, exc, dbapi_error, connection_invalidated=True, dialect=dialect
            ) from exc
        finally:
            # Before the pool closes or hands out the connection: its descriptor is not ours to
            # cut once the ping is over.
            deadline.disarm()

    dialect.do_ping = do_ping
    dialect._reliability_ping = True


@contextmanager
def checkout(deadline: Deadline) -> Iterator[None]:
    """Start ``deadline``'s clock and run the block (a connection checkout) under it: a pool
    pre-ping inside it is cut when the clock runs out (see :func:`bound_engine`)."""
    deadline.start()
    token = _CHECKING_OUT.set(deadline)
    try:
        yield
    finally:
        _CHECKING_OUT.reset(token)


def _start(conn: Connection, mode: str) -> None:
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        if getattr(dbapi, "autocommit", None) is True:
            raise ConfigurationError(
                "the sqlite3 connection has autocommit=True, whose commit() does nothing: "
                "build the engine without connect_args={'autocommit': True}"
            )
        if not dbapi.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql(f"BEGIN {mode}")
    elif getattr(dbapi, "autocommit", False):
        raise ConfigurationError(
            "the engine's connections are in autocommit mode (isolation_level='AUTOCOMMIT'), so "
            "a store's statements and the caller's rows cannot commit together: pass an engine "
            "without isolation_level='AUTOCOMMIT'"
        )


@contextmanager
def _busy_timeout(conn: Connection, ms: int) -> Iterator[None]:
    # On the driver connection itself: through SQLAlchemy the PRAGMA would open a transaction.
    raw: Any = conn.connection.dbapi_connection
    old = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout = {int(ms)}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {old}")


@contextmanager
def store_transaction(
    engine: Engine, deadline: Deadline, *, lock_wait_ms: int | None = None
) -> Iterator[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite), bounded by ``deadline`` from the
    checkout on, committed before the block's result is returned.

    ``lock_wait_ms`` (SQLite) waits at most that long for the write lock instead of the
    connection's busy timeout; the first statement must then be a write.
    """
    try:
        if lock_wait_ms is None or engine.dialect.name != "sqlite":
            with ExitStack() as stack:
                with checkout(deadline):
                    conn = stack.enter_context(begin_immediate(engine))
                deadline.arm(conn)
                _start(conn, "IMMEDIATE")
                yield conn
        else:
            with engine.connect() as conn, _busy_timeout(conn, lock_wait_ms), conn.begin():
                _start(conn, "IMMEDIATE")
                yield conn
    finally:
        deadline.disarm()


@contextmanager
def handler_transaction(engine: Engine, deadline: Deadline) -> Iterator[Connection]:
    """The transaction a handler's rows share with the completion: deferred on SQLite, so the
    write lock is taken by the first write, not for the whole handler. Opening it (from the
    checkout on) and committing it are bounded by ``deadline``; the body (the handler) is not."""
    try:
        with checkout(deadline):
            conn = engine.connect()
        with conn:
            deadline.arm(conn)
            with conn.begin():
                _start(conn, "DEFERRED")
                deadline.disarm()
                try:
                    yield conn
                finally:
                    deadline.start()  # the commit (or rollback) at the block's exit: a new clock
                    deadline.arm(conn)
    finally:
        deadline.disarm()


@contextmanager
def store_connection(engine: Engine, deadline: Deadline) -> Iterator[Connection]:
    """A connection for reads, bounded by ``deadline`` from the checkout on."""
    try:
        with checkout(deadline):
            conn = engine.connect()
        with conn:
            deadline.arm(conn)
            yield conn
    finally:
        deadline.disarm()
