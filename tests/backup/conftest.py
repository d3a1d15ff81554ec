"""Fixtures for the backup tests: real SQLite files, fresh PostgreSQL schemas, real audit logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.ops.backup_engine import Backup, BackupEngine
from pytest_reliability.ops.rbac import OpsContext


@pytest.fixture
def admin() -> OpsContext:
    """An actor whose credentials carry ops_admin on the platform."""
    return OpsContext("backup-admin", roles=frozenset({"ops_admin"}))


@pytest.fixture
def audit() -> InMemoryAuditLog:
    """The audit sink the engine under test writes to."""
    return InMemoryAuditLog()


@pytest.fixture
def populated_sqlite(tmp_path: Path) -> str:
    """A SQLite database with audit events, idempotency records and kill switches."""
    from harness.backup_drill import populate

    url = f"sqlite:///{tmp_path / 'source.db'}"
    populate(url, events=10)
    return url


@pytest.fixture
def sqlite_backup(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> Backup:
    """One published backup of ``populated_sqlite``."""
    engine = BackupEngine.from_url(populated_sqlite, directory=tmp_path / "backups", audit=audit)
    return engine.create(actor=admin, reason="test")


def platform_events(log: InMemoryAuditLog) -> list[tuple[str, str]]:
    """(action, outcome) of every event in the platform chain."""
    from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope

    with tenant_scope(PLATFORM_SCOPE):
        return [(e.action, e.outcome) for e in log.events()]
