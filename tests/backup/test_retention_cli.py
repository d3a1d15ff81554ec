"""Retention (prune only after a newer backup validated, never a foreign file) and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.ops.backup_engine import BackupEngine, RetentionPolicy
from pytest_reliability.ops.rbac import OpsContext
from tests.backup.conftest import platform_events

ROOT = Path(__file__).resolve().parents[2]


def _engine(url: str, directory: Path, audit: InMemoryAuditLog) -> BackupEngine:
    return BackupEngine.from_url(url, directory=directory, audit=audit)


def test_prune_keeps_the_newest_n_and_never_touches_foreign_files(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    directory = tmp_path / "b"
    engine = _engine(populated_sqlite, directory, audit)
    made = [engine.create(actor=admin, reason=f"n{i}") for i in range(4)]
    foreign = [directory / "notes.txt", directory / "db-20200101T000000000000Z-deadbeef.dump"]
    for path in foreign:
        path.write_text("not ours")
    result = engine.prune(RetentionPolicy(keep_last=2), actor=admin, reason="nightly")
    assert result.deleted == tuple(b.path for b in made[:2])
    assert result.validated == made[-1].path
    assert [b.path for b in engine.list(actor=admin)] == [b.path for b in made[2:]]
    for backup in made[:2]:
        assert not backup.path.exists()
        assert not backup.checksum_path.exists()
        assert not backup.manifest_path.exists()
    assert all(p.read_text() == "not ours" for p in foreign)
    assert ("backup.prune", "ok") in platform_events(audit)


def test_prune_deletes_nothing_until_a_newer_backup_validates(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    engine = _engine(populated_sqlite, tmp_path / "b", audit)
    made = [engine.create(actor=admin, reason=f"n{i}") for i in range(3)]
    for backup in made:
        backup.checksum_path.write_text("garbage\n")
    result = engine.prune(RetentionPolicy(keep_last=1), actor=admin, reason="nightly")
    assert result.deleted == ()
    assert result.validated is None
    assert "no backup in the directory validates" in result.note
    assert all(b.path.exists() for b in made)
    assert platform_events(audit)[-1] == ("backup.prune", "skipped")
    # Repair the oldest only: it is the newest valid one, and nothing older exists to prune.
    made[0].checksum_path.write_text(f"{made[0].sha256}  {made[0].path.name}\n")
    result = engine.prune(RetentionPolicy(keep_last=1), actor=admin, reason="nightly")
    assert result.deleted == ()
    assert result.validated == made[0].path


def test_keep_within_keeps_young_backups(
    tmp_path: Path, populated_sqlite: str, audit: InMemoryAuditLog, admin: OpsContext
) -> None:
    engine = _engine(populated_sqlite, tmp_path / "b", audit)
    made = [engine.create(actor=admin, reason=f"n{i}") for i in range(3)]
    old = made[0]
    doc = json.loads(old.manifest_path.read_text())
    doc["created_at"] = "2020-01-01T00:00:00Z"
    old.manifest_path.write_text(json.dumps(doc))
    result = engine.prune(RetentionPolicy(keep_within=timedelta(days=1)), actor=admin, reason="x")
    assert result.deleted == (old.path,)


def test_a_retention_policy_needs_a_rule() -> None:
    with pytest.raises(ConfigurationError):
        RetentionPolicy()
    with pytest.raises(ConfigurationError):
        RetentionPolicy(keep_last=0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_reliability", "backup", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_cli_creates_lists_validates_drills_and_prunes(
    tmp_path: Path, populated_sqlite: str
) -> None:
    directory = str(tmp_path / "b")
    common = ["--database-url", populated_sqlite, "--directory", directory]
    for _ in range(2):
        created = _cli("create", *common, "--reason", "cli test")
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith("backup created: ")
    listed = _cli("list", *common, "--json")
    assert listed.returncode == 0, listed.stderr
    paths = [Path(b["path"]) for b in json.loads(listed.stdout)]
    assert len(paths) == 2
    ok = _cli("validate", str(paths[0]))
    assert (ok.returncode, ok.stdout.count("\n")) == (0, 1)
    drilled = _cli("drill", str(paths[0]), "--json")
    assert drilled.returncode == 0, drilled.stderr
    assert json.loads(drilled.stdout)["status"] == "passed"
    pruned = _cli("prune", *common, "--keep-last", "1", "--reason", "cli test")
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 backup(s)" in pruned.stdout
    Path(str(paths[1]) + ".sha256").write_text("0" * 64 + "  x\n")
    bad = _cli("validate", str(paths[1]))
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1
    assert "checksum_file_name" in bad.stderr
    refused = _cli("drill", str(paths[1]))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--directory", "x"],  # no --reason
        ["prune", "--directory", "x", "--reason", "r", "--keep-within", "soon"],
        ["create", "--database-url", "mysql://h/d", "--directory", "x", "--reason", "r"],
        ["prune", "--database-url", "sqlite:///x.db", "--directory", "x", "--reason", "r"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_reliability", "backup", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_the_backup_gate_script_passes_and_writes_its_result(tmp_path: Path) -> None:
    out = tmp_path / "backup-gate.json"
    result = subprocess.run(
        ["bash", str(ROOT / "ci" / "backup-validation.sh")],
        env={**os.environ, "PYTHONPATH": str(ROOT), "BACKUP_GATE_REPORT": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["status"] == "passed"
    assert document["validation"]["ok"] is True
    assert document["drill"]["status"] == "passed"
    assert document["drill"]["rows_checked"] > document["populated"]["audit_events"]
