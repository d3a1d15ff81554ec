"""The restore drill: a throwaway server, a copy equal to the manifest, and no other target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import ConfigurationError, DrillTargetRefused, RestoreDrillError
from pytest_reliability.ops.backup_engine import Backup, BackupEngine
from pytest_reliability.ops.rbac import OpsContext
from pytest_reliability.ops.restore_drill import (
    ThrowawayCluster,
    backups_section,
    run_drill,
    started_here,
)
from pytest_reliability.report import violations
from tests.backup.test_engine import _wait_for_events, _writer


def _reseal_manifest(backup: Backup, edit: dict[str, object]) -> None:
    doc = json.loads(backup.manifest_path.read_text())
    doc.update(edit)
    backup.manifest_path.write_text(json.dumps(doc))


@pytest.mark.postgres
@pytest.mark.slow
def test_a_pg_drill_under_a_writer_restores_a_verified_copy_equal_to_the_manifest(
    pg_url: str, tmp_path: Path, admin: OpsContext
) -> None:
    from harness.backup_drill import populate

    populate(pg_url, events=20)
    # Column types without a hash function take the row-text digest path.
    from pytest_reliability.db import make_engine

    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE shapes (id int PRIMARY KEY, at point, meta json)")
        conn.exec_driver_sql("INSERT INTO shapes VALUES (1, point(1.5, 2), '{\"a\": [1, 2]}')")
    engine.dispose()
    writer = _writer(pg_url, 4000)
    try:
        _wait_for_events(pg_url, 60)
        backup = BackupEngine.from_url(pg_url, directory=tmp_path, audit=InMemoryAuditLog()).create(
            actor=admin, reason="drill under load"
        )
        assert writer.poll() is None, "the writer finished before the backup: not under load"
    finally:
        _, err = writer.communicate(timeout=600)
    assert writer.returncode == 0, err.decode()
    tables = backup.manifest["tables"]
    schema = backup.manifest["source"]["schema"]
    assert tables[f"{schema}.idempotency_records"]["rows"] == 10
    assert tables[f"{schema}.ops_kill_switches"]["rows"] == 2
    assert tables[f"{schema}.shapes"]["rows"] == 1
    assert "writer" in backup.manifest["audit_heads"]
    result = run_drill(backup.path)
    assert result.ok, result.problems
    assert result.backend == "postgresql"
    assert result.tables_checked == len(tables)
    assert result.rows_checked == sum(t["rows"] for t in tables.values())
    assert result.audit_events_verified == tables[f"{schema}.audit_events"]["rows"]
    assert 0 < result.restore_s <= result.rto_s
    assert not started_here("127.0.0.1", 0)
    section = backups_section()
    assert section is not None
    assert section["drills"][-1]["status"] == "passed"
    report = {"backups": section}
    errors = [v for v in violations(report) if v.pointer.startswith("/backups")]
    assert errors == []


@pytest.mark.postgres
def test_the_drill_refuses_the_live_database_and_servers_it_did_not_start(
    pg_url: str, postgres_server_url: str, tmp_path: Path, admin: OpsContext
) -> None:
    from harness.backup_drill import populate

    populate(pg_url, events=2)
    backup = BackupEngine.from_url(pg_url, directory=tmp_path, audit=InMemoryAuditLog()).create(
        actor=admin, reason="test"
    )
    with pytest.raises(DrillTargetRefused, match="is the source database"):
        run_drill(backup.path, target=pg_url)
    other_db = postgres_server_url.rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(DrillTargetRefused, match="not a throwaway server this drill started"):
        run_drill(backup.path, target=other_db)
    # A cluster the drill machinery started is an acceptable target, and only while it runs.
    with ThrowawayCluster() as cluster:
        assert started_here(cluster.host, cluster.port)
        target = cluster.url()
    with pytest.raises(DrillTargetRefused):
        run_drill(backup.path, target=target)


@pytest.mark.postgres
def test_a_restored_copy_that_differs_from_the_manifest_fails_the_drill(
    pg_url: str, tmp_path: Path, admin: OpsContext
) -> None:
    from harness.backup_drill import populate

    populate(pg_url, events=3)
    backup = BackupEngine.from_url(pg_url, directory=tmp_path, audit=InMemoryAuditLog()).create(
        actor=admin, reason="test"
    )
    tables = dict(backup.manifest["tables"])
    name = next(n for n in tables if n.endswith(".audit_events"))
    tables[name] = {**tables[name], "rows": tables[name]["rows"] + 1}
    _reseal_manifest(backup, {"tables": tables})
    result = run_drill(backup.path, expected="failed")
    assert not result.ok
    want = tables[name]["rows"]
    assert result.reason == f"table {name} has {want - 1} rows; the manifest says {want}"


def test_a_sqlite_drill_verifies_the_copy_and_refuses_the_source(
    sqlite_backup: Backup, populated_sqlite: str, tmp_path: Path
) -> None:
    result = run_drill(sqlite_backup.path)
    assert result.ok, result.problems
    assert result.audit_events_verified > 0
    source = populated_sqlite.removeprefix("sqlite:///")
    before = Path(source).read_bytes()
    with pytest.raises(DrillTargetRefused, match="is the source database"):
        run_drill(sqlite_backup.path, target=source)
    foreign = tmp_path / "someone-elses.db"
    foreign.write_bytes(b"keep me")
    with pytest.raises(DrillTargetRefused, match="exists"):
        run_drill(sqlite_backup.path, target=str(foreign))
    assert foreign.read_bytes() == b"keep me"
    assert Path(source).read_bytes() == before


def test_a_sqlite_drill_finds_a_changed_table_digest(sqlite_backup: Backup) -> None:
    tables = dict(sqlite_backup.manifest["tables"])
    tables["idempotency_records"] = {**tables["idempotency_records"], "digest": "0" * 64}
    _reseal_manifest(sqlite_backup, {"tables": tables})
    result = run_drill(sqlite_backup.path, expected="failed")
    assert result.problems == (
        "table idempotency_records content digest differs from the manifest",
    )
    # A planted fault caught: the report counts it apart from the failures.
    assert result.to_json()["expected"] == "failed"
    section = backups_section([result.to_json()])
    assert section is not None
    assert (section["passed"], section["failed"], section["expected_failures"]) == (0, 0, 1)
    with pytest.raises(ConfigurationError, match="expected outcome"):
        run_drill(sqlite_backup.path, expected="maybe")  # type: ignore[arg-type]


def test_a_backup_that_does_not_validate_is_not_drilled(sqlite_backup: Backup) -> None:
    sqlite_backup.checksum_path.unlink()
    with pytest.raises(RestoreDrillError, match="checksum_missing"):
        run_drill(sqlite_backup.path)


def test_a_sqlite_drill_finds_a_broken_audit_chain_even_when_the_manifest_agrees(
    sqlite_backup: Backup,
) -> None:
    # Rewrite one audit event in the archive and reseal everything (checksum, size, table
    # digests): only AuditLog.verify on the restored copy can tell.
    import hashlib
    import sqlite3

    from pytest_reliability.ops.backup_engine._content import sqlite_content

    conn = sqlite3.connect(sqlite_backup.path)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET target = 'invoice/forged' WHERE seq = 3")
    conn.commit()
    content = sqlite_content(conn)
    conn.close()
    data = sqlite_backup.path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    sqlite_backup.checksum_path.write_text(f"{digest}  {sqlite_backup.path.name}\n")
    archive = {**sqlite_backup.manifest["archive"], "sha256": digest, "size_bytes": len(data)}
    _reseal_manifest(sqlite_backup, {"archive": archive, "tables": content.tables_json()})
    result = run_drill(sqlite_backup.path, expected="failed")
    assert not result.ok
    assert result.problems[0].startswith("audit chain of the restored copy is broken")
    assert "changed" in result.problems[0]
