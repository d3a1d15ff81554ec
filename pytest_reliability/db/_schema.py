"""The package's one :class:`~sqlalchemy.MetaData`, the tables registered on it, and
:func:`create_schema`.

Nothing here names a module above ``db``: each module that owns tables registers them when it is
imported (:func:`register_tables`), and each that needs DDL ``create_all`` cannot express
(triggers, functions) registers a hook (:func:`register_schema_hook`). :func:`create_schema`
creates what is registered so far; ``pytest_reliability.tables.create_all`` imports every module
the package ships with tables first, and so creates everything.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection, Engine

from pytest_reliability.db._engine import is_postgres, pg_advisory_xact_lock
from pytest_reliability.errors import ConfigurationError

metadata = MetaData()
"""Every table of the package lives on this metadata."""

SchemaHook = Callable[[Connection], None]
_tables: dict[str, Table] = {}
_hooks: list[SchemaHook] = []


def register_tables(*tables: Table) -> None:
    """Have :func:`create_schema` create ``tables`` (defined on :data:`metadata`); idempotent."""
    for table in tables:
        if not isinstance(table, Table) or table.metadata is not metadata:
            raise ConfigurationError(
                f"only tables on pytest_reliability.db.metadata can be registered, not {table!r}"
            )
        _tables[table.name] = table


def registered_tables() -> tuple[str, ...]:
    """Return the names of the tables :func:`create_schema` creates, in registration order."""
    return tuple(_tables)


def register_schema_hook(hook: SchemaHook) -> SchemaHook:
    """Run ``hook(conn)`` after the tables exist, inside create_schema's transaction.

    Hooks install what ``create_all`` cannot (triggers, functions) and must be idempotent.
    """
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def create_schema(engine: Engine) -> None:
    """Create every registered table, index and trigger; safe to run twice or concurrently.

    A module's tables are registered when the module defining them is imported (the audit log and
    the SQL stores import theirs); ``pytest_reliability.tables.create_all`` creates everything the
    package ships.
    """
    with engine.begin() as conn:
        if is_postgres(conn):
            # Concurrent create_all on PostgreSQL races between "does it exist" and CREATE.
            pg_advisory_xact_lock(conn, "pytest_reliability.create_schema")
        metadata.create_all(conn, tables=list(_tables.values()), checkfirst=True)
        for hook in tuple(_hooks):
            hook(conn)
