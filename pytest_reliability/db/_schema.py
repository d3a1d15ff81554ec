"""The package's one :class:`~sqlalchemy.MetaData` and :func:`create_schema`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, Engine

from pytest_reliability.db._engine import is_postgres, pg_advisory_xact_lock

metadata = MetaData()
"""Every table of the package lives on this metadata."""

# Modules that define tables on ``metadata``; imported by create_schema so it sees them all.
_TABLE_MODULES: tuple[str, ...] = (
    "pytest_reliability.audit._schema",
    "pytest_reliability.idempotency._tables",
    "pytest_reliability.ops._tables",
)

SchemaHook = Callable[[Connection], None]
_hooks: list[SchemaHook] = []


def register_schema_hook(hook: SchemaHook) -> SchemaHook:
    """Run ``hook(conn)`` after the tables exist, inside create_schema's transaction.

    Hooks install what ``create_all`` cannot (triggers, functions) and must be idempotent.
    """
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def create_schema(engine: Engine) -> None:
    """Create every table, index and trigger of the package; safe to run twice or concurrently."""
    for module in _TABLE_MODULES:
        importlib.import_module(module)
    with engine.begin() as conn:
        if is_postgres(conn):
            # Concurrent create_all on PostgreSQL races between "does it exist" and CREATE.
            pg_advisory_xact_lock(conn, "pytest_reliability.create_schema")
        metadata.create_all(conn, checkfirst=True)
        for hook in _hooks:
            hook(conn)
