"""Every table the package ships, for a deployment that wants them all created at once.

:func:`pytest_reliability.db.create_schema` creates the tables registered so far, and a module
registers its tables when it is imported. This module sits on the top floor, beside the plugin
and the CLI: it imports every module that owns tables (so they register) and creates them::

    from pytest_reliability.tables import create_all
    create_all(make_engine())

A new module with tables adds its table module to the imports below.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

# Imported for their registration with db (the names keep the imports visible to the linters
# and to the import-rule test).
from pytest_reliability.audit import _schema as _audit_tables
from pytest_reliability.db import create_schema
from pytest_reliability.idempotency import _tables as _idempotency_tables
from pytest_reliability.ops import _tables as _ops_tables
from pytest_reliability.security.abuse_protection import _tables as _abuse_tables

__all__ = ["SHIPPED_TABLE_MODULES", "create_all"]

SHIPPED_TABLE_MODULES: tuple[str, ...] = tuple(
    m.__name__ for m in (_audit_tables, _idempotency_tables, _ops_tables, _abuse_tables)
)
"""The modules that define the package's tables, in creation order."""


def create_all(engine: Engine) -> None:
    """Create every table, index and trigger the package ships; safe to run twice or at once."""
    create_schema(engine)
