"""The engine policy: every module takes any SQLAlchemy engine, or refuses it at construction.

A service hands its modules the :class:`~sqlalchemy.engine.Engine` it already has, built by
:func:`~pytest_reliability.db.make_engine` or by plain :func:`sqlalchemy.create_engine`, with any
pool class. Modules never rely on settings only ``make_engine`` applies (autocommit, ``BEGIN``
modes, pragmas): every write is committed explicitly before it is acknowledged. What cannot work
whatever the module does is refused here, with a :class:`ConfigurationError` that says what to
change, so a store never acknowledges a write into a database that is gone a moment later.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import StaticPool

from pytest_reliability.errors import ConfigurationError

Backend = Literal["sqlite", "postgresql"]

_SUPPORTED_DRIVERS: dict[str, tuple[str, str]] = {
    "sqlite": ("pysqlite", "sqlite:///PATH"),
    "postgresql": ("psycopg", "postgresql+psycopg://USER@HOST/DB"),
}


def is_memory_sqlite(url: URL) -> bool:
    """Return whether a SQLite ``url`` names an in-memory database (private or shared-cache)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return True
    return url.query.get("mode") == "memory" or "mode=memory" in database


def check_engine(engine: object, *, user: str) -> Backend:
    """Return the backend of ``engine``, or raise :class:`ConfigurationError` if it cannot work.

    ``user`` names the module asking (it goes into the message). Refused:

    * anything but a synchronous :class:`~sqlalchemy.engine.Engine` (an ``AsyncEngine`` too);
    * databases other than SQLite and PostgreSQL, and drivers other than the standard library's
      ``sqlite3`` and psycopg 3 (the stores speak to the driver directly on their hot paths);
    * an in-memory SQLite database with any pool but :class:`~sqlalchemy.pool.StaticPool`: every
      other pool hands out new connections (per checkout, per thread, or after a recycle), each
      with its own empty database, so a write would be acknowledged and then gone.
    """
    if not isinstance(engine, Engine):
        raise ConfigurationError(
            f"{user} needs a synchronous sqlalchemy.engine.Engine, not {type(engine).__name__}:"
            " create one with sqlalchemy.create_engine(url) or pytest_reliability.db.make_engine"
            "(url) (for an AsyncEngine, a sync engine on the same database)"
        )
    backend = engine.dialect.name
    if backend not in _SUPPORTED_DRIVERS:
        raise ConfigurationError(
            f"{user} supports SQLite and PostgreSQL, not {backend!r}: "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    driver, example = _SUPPORTED_DRIVERS[backend]
    if engine.dialect.driver != driver:
        raise ConfigurationError(
            f"{user} does not support the {backend}+{engine.dialect.driver} driver: "
            f"create the engine from {example} (driver {driver})"
        )
    memory = backend == "sqlite" and is_memory_sqlite(engine.url)
    if memory and not isinstance(engine.pool, StaticPool):
        raise ConfigurationError(
            f"{user} cannot use an in-memory SQLite database through "
            f"{type(engine.pool).__name__}: it opens a new, empty database per connection, "
            "so acknowledged writes would vanish. Use a file (sqlite:///PATH), "
            "make_engine('sqlite://'), or create_engine('sqlite://', poolclass=StaticPool, "
            "connect_args={'check_same_thread': False})"
        )
    return "sqlite" if backend == "sqlite" else "postgresql"


def shares_one_connection(engine: Engine) -> bool:
    """Return whether every checkout of ``engine`` gets the same DBAPI connection.

    With :class:`~sqlalchemy.pool.StaticPool`, two threads would interleave their statements in
    one transaction; a store serialises its own use of such an engine.
    """
    return isinstance(engine.pool, StaticPool)


__all__ = ["Backend", "check_engine", "is_memory_sqlite", "shares_one_connection"]
