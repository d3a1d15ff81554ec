"""The backup packages say exactly what they export, and every export is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = {
    "pytest_reliability.ops.backup_engine": {
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
    },
    "pytest_reliability.ops.restore_validation": {"FailureReason", "ValidationResult", "validate"},
    "pytest_reliability.ops.restore_drill": {
        "DrillResult",
        "ThrowawayCluster",
        "backups_section",
        "run_drill",
        "session_drills",
        "started_here",
    },
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert set(module.__all__) == MODULES[name]
    for export in module.__all__:
        obj = getattr(module, export)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{export} has no docstring"


def test_the_backup_permissions_are_registered() -> None:
    from pytest_reliability.ops.rbac import BUILTIN_ROLES, Permission, known_permissions

    names = {p.name for p in known_permissions()}
    assert {"ops.backup.create", "ops.backup.read", "ops.backup.prune"} <= names
    assert Permission.BACKUP_CREATE in BUILTIN_ROLES["ops_admin"]
    assert Permission.BACKUP_CREATE not in BUILTIN_ROLES["ops_viewer"]


def test_the_manifest_schema_ships_with_the_package() -> None:
    from pytest_reliability._schemas import load_schema

    schema = load_schema("backup-manifest.schema.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
