"""The SQL backbone: engines from URLs, the package's metadata, registered tables, their schema.

``RELIABILITY_DATABASE_URL`` names the database; unset, it is a SQLite file ``reliability.db`` in
the working directory. ``postgresql://`` URLs use psycopg 3 (the ``postgres`` extra).

Modules take any engine a service already has and call :func:`check_engine` at construction:
it refuses, with a :class:`~pytest_reliability.errors.ConfigurationError`, an engine that cannot
keep an acknowledged write (see ``docs/foundation.md``, "Engines").
"""

from __future__ import annotations

from pytest_reliability.db._engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    SQLITE_BUSY_TIMEOUT_MS,
    advisory_lock_key,
    begin_immediate,
    database_url_from_env,
    is_postgres,
    is_sqlite,
    make_engine,
    normalize_url,
    pg_advisory_xact_lock,
    session_factory,
)
from pytest_reliability.db._policy import (
    Backend,
    check_engine,
    is_memory_sqlite,
    shares_one_connection,
)
from pytest_reliability.db._schema import (
    create_schema,
    metadata,
    register_schema_hook,
    register_tables,
    registered_tables,
)

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Backend",
    "advisory_lock_key",
    "begin_immediate",
    "check_engine",
    "create_schema",
    "database_url_from_env",
    "is_memory_sqlite",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "metadata",
    "normalize_url",
    "pg_advisory_xact_lock",
    "register_schema_hook",
    "register_tables",
    "registered_tables",
    "session_factory",
    "shares_one_connection",
]
