"""The backup engine: consistent copies under writers, atomic files, RBAC, audit, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import (
    BackupDirectoryError,
    BackupSourceUnavailable,
    BackupToolError,
    ConfigurationError,
    PermissionDenied,
)
from pytest_reliability.ops.backup_engine import MANIFEST_SCHEMA, BackupEngine
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext
from pytest_reliability.ops.restore_drill import run_drill
from pytest_reliability.ops.restore_validation import validate
from pytest_reliability.report import violations
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope
from tests.backup.conftest import platform_events

ROOT = Path(__file__).resolve().parents[2]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _writer(url: str, count: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.audit_writer", url, "writer", str(count)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_events(url: str, minimum: int, timeout: float = 60) -> None:
    import sqlalchemy as sa

    from pytest_reliability.db import make_engine

    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                try:
                    n = conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one()
                except sa.exc.DBAPIError:
                    n = 0
            if n >= minimum:
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"the writer did not reach {minimum} events in {timeout}s")


def test_sqlite_backups_taken_while_a_writer_appends_are_consistent(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    engine = BackupEngine.from_url(populated_sqlite, directory=tmp_path / "b", audit=audit)
    writer = _writer(populated_sqlite, 3000)
    try:
        _wait_for_events(populated_sqlite, 40)
        backups = [engine.create(actor=admin, reason=f"under load {i}") for i in range(3)]
        assert writer.poll() is None, "the writer finished before the backups: not under load"
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err.decode()
    counts = [b.manifest["tables"]["audit_events"]["rows"] for b in backups]
    assert counts == sorted(counts), counts
    assert counts[0] < counts[-1], counts
    for backup in backups:
        assert validate(backup.path).ok
        drill = run_drill(backup.path)
        assert drill.ok, drill.problems
        assert drill.audit_events_verified == backup.manifest["tables"]["audit_events"]["rows"]


def test_the_manifest_records_what_the_issue_asks_for(sqlite_backup: object) -> None:
    from pytest_reliability.ops.backup_engine import Backup

    assert isinstance(sqlite_backup, Backup)
    manifest = json.loads(sqlite_backup.manifest_path.read_text())
    assert violations(manifest, MANIFEST_SCHEMA) == []
    assert manifest["tools"]["sqlite"]
    assert manifest["archive"]["size_bytes"] == sqlite_backup.path.stat().st_size
    assert manifest["duration_s"] > 0
    assert manifest["tables"]["audit_events"]["rows"] > 0
    assert set(manifest["tables"]) >= {"audit_events", "idempotency_records", "ops_kill_switches"}
    assert set(manifest["audit_heads"]) == {"acme", "globex", str(PLATFORM_SCOPE)}
    assert not [p for p in sqlite_backup.path.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.postgres
def test_the_password_never_reaches_the_manifest_or_the_audit_log(
    pg_url: str, tmp_path: Path, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    # The suite's server trusts local connections, so a password in the URL is accepted unused.
    url = pg_url.replace("postgres@", "postgres:hunter2-secret@", 1)
    assert "hunter2" in url
    from harness.backup_drill import populate

    populate(pg_url, events=3)
    backup = BackupEngine.from_url(url, directory=tmp_path, audit=audit).create(
        actor=admin, reason="test"
    )
    assert "hunter2" not in backup.manifest_path.read_text()
    assert backup.manifest["source"]["url"].startswith("postgresql+psycopg://postgres@")
    assert (
        backup.manifest["tools"]["pg_dump"].split(".")[0]
        == backup.manifest["source"]["server_version"].split(".")[0]
    )
    with tenant_scope(PLATFORM_SCOPE):
        assert "hunter2" not in repr(audit.events())


def test_create_is_audited_and_denied_without_permission(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog
) -> None:
    authz = AuthorizationEngine()
    authz.grant("viewer", "ops_viewer")
    engine = BackupEngine.from_url(
        populated_sqlite, directory=tmp_path / "b", audit=audit, authz=authz
    )
    with pytest.raises(PermissionDenied) as info:
        engine.create(actor="viewer", reason="no")
    assert info.value.permission == "ops.backup.create"
    assert _files(tmp_path / "b") == []
    assert platform_events(audit) == [("ops.permission", "deny")]
    authz.grant("operator", "ops_admin")
    engine.create(actor="operator", reason="yes")
    assert platform_events(audit)[1:] == [
        ("ops.permission", "allow"),
        ("backup.start", "started"),
        ("backup.success", "ok"),
    ]


def test_an_unknown_scheme_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="known schemes: sqlite, postgresql"):
        BackupEngine.from_url("mysql://x/y", directory=tmp_path, audit=InMemoryAuditLog())


def test_a_missing_sqlite_source_fails_audited_without_files(
    tmp_path: Path, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    engine = BackupEngine.from_url(
        f"sqlite:///{tmp_path / 'nope.db'}", directory=tmp_path / "b", audit=audit
    )
    with pytest.raises(BackupSourceUnavailable, match="does not exist"):
        engine.create(actor=admin, reason="test")
    assert not (tmp_path / "nope.db").exists(), "the source must never be created"
    assert _files(tmp_path / "b") == []
    assert platform_events(audit)[-1] == ("backup.failure", "failed")


def test_a_directory_that_is_a_file_is_a_typed_error(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    engine = BackupEngine.from_url(populated_sqlite, directory=blocker / "b", audit=audit)
    with pytest.raises(BackupDirectoryError):
        engine.create(actor=admin, reason="test")
    assert blocker.read_text() == "not a directory"
    assert platform_events(audit)[-1] == ("backup.failure", "failed")


def test_a_full_directory_leaves_no_partial_file_and_an_audited_failure(
    tmp_path: Path, populated_sqlite: str
) -> None:
    # A file-size limit makes every write past 64 KiB fail with EFBIG, as a full disk does.
    from pytest_reliability.db import create_schema, make_engine

    big = make_engine(populated_sqlite)
    create_schema(big)
    with big.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ballast (b BLOB)")
        conn.exec_driver_sql("INSERT INTO ballast VALUES (zeroblob(400000))")
    big.dispose()
    audit_url = f"sqlite:///{tmp_path / 'audit.db'}"
    create_schema(make_engine(audit_url))
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
        "from pytest_reliability.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "backup",
            "create",
            "--database-url",
            populated_sqlite,
            "--directory",
            str(tmp_path / "b"),
            "--audit-url",
            audit_url,
            "--reason",
            "full",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "BackupDirectoryError" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert _files(tmp_path / "b") == []
    import sqlalchemy as sa

    engine = make_engine(audit_url)
    with engine.connect() as conn:
        actions = conn.execute(
            sa.text("SELECT action, details FROM audit_events ORDER BY seq")
        ).all()
    engine.dispose()
    assert actions[-1][0] == "backup.failure"
    assert json.loads(actions[-1][1])["reason"] == "full"


@pytest.mark.postgres
def test_a_missing_pg_dump_and_an_old_pg_dump_are_typed_errors(
    pg_url: str, tmp_path: Path, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    engine = BackupEngine.from_url(pg_url, directory=tmp_path / "b", audit=audit, pg_bin_dir=empty)
    with pytest.raises(BackupToolError, match="pg_dump not found") as info:
        engine.create(actor=admin, reason="test")
    assert info.value.tool == "pg_dump"
    old = tmp_path / "old-bin"
    old.mkdir()
    fake = old / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(0o755)
    engine = BackupEngine.from_url(pg_url, directory=tmp_path / "b", audit=audit, pg_bin_dir=old)
    with pytest.raises(BackupToolError, match=r"pg_dump 9\.6 .* is older than the server"):
        engine.create(actor=admin, reason="test")
    assert _files(tmp_path / "b") == []
    assert [a for a, _ in platform_events(audit)].count("backup.failure") == 2


@pytest.mark.postgres
def test_a_server_that_refuses_the_connection_is_a_typed_error(
    tmp_path: Path, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    engine = BackupEngine.from_url(url, directory=tmp_path / "b", audit=audit)
    with pytest.raises(BackupSourceUnavailable, match="refused the connection"):
        engine.create(actor=admin, reason="test")
    assert _files(tmp_path / "b") == []
    assert platform_events(audit)[-1] == ("backup.failure", "failed")
