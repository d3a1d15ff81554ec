"""The backup engine: consistent SQLite and PostgreSQL backups with checksum and manifest.

:class:`BackupEngine` takes a backup (:meth:`~BackupEngine.create`), lists and prunes them under
RBAC and audit. Each backup is an archive, a ``sha256sum`` checksum file and a JSON manifest
(``schemas/backup-manifest.schema.json``), each published atomically. See ``docs/backup.md``.
"""

from __future__ import annotations

from pytest_reliability.ops.backup_engine._engine import (
    AUDIT_FAILURE,
    AUDIT_START,
    AUDIT_SUCCESS,
    BackupEngine,
)
from pytest_reliability.ops.backup_engine._manifest import MANIFEST_SCHEMA
from pytest_reliability.ops.backup_engine._retention import (
    Backup,
    PruneResult,
    RetentionPolicy,
    list_backups,
)
from pytest_reliability.ops.backup_engine._schemes import KNOWN_SCHEMES, source_from_url
from pytest_reliability.ops.backup_engine._sources import (
    BackupSource,
    Dumped,
    PostgresSource,
    SqliteSource,
)

__all__ = [
    "AUDIT_FAILURE",
    "AUDIT_START",
    "AUDIT_SUCCESS",
    "KNOWN_SCHEMES",
    "MANIFEST_SCHEMA",
    "Backup",
    "BackupEngine",
    "BackupSource",
    "Dumped",
    "PostgresSource",
    "PruneResult",
    "RetentionPolicy",
    "SqliteSource",
    "list_backups",
    "source_from_url",
]
