"""Every kind of damage to a backup is caught by validate() and named by its own reason."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_reliability.ops.backup_engine import Backup
from pytest_reliability.ops.restore_validation import FailureReason, validate

Damage = Callable[[Backup, Path], None]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_checksum(backup: Backup, text: bytes) -> None:
    backup.checksum_path.write_bytes(text)


def _line(backup: Backup) -> bytes:
    return backup.checksum_path.read_bytes()


def test_an_intact_backup_validates_and_sha256sum_accepts_its_checksum(
    sqlite_backup: Backup,
) -> None:
    result = validate(sqlite_backup.path)
    assert result.ok, str(result)
    assert result.reason is None
    assert result.size_bytes == sqlite_backup.path.stat().st_size
    line = sqlite_backup.checksum_path.read_text()
    assert line == f"{sqlite_backup.sha256}  {sqlite_backup.path.name}\n"
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", sqlite_backup.checksum_path.name],
        cwd=sqlite_backup.path.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout == f"{sqlite_backup.path.name}: OK\n"


@pytest.mark.parametrize("where", ["first", "middle", "last", "random"])
def test_one_flipped_byte_anywhere_is_a_digest_mismatch(sqlite_backup: Backup, where: str) -> None:
    size = sqlite_backup.path.stat().st_size
    offsets = {"first": [0], "middle": [size // 2], "last": [size - 1]}
    for offset in offsets.get(where) or random.Random(12).sample(range(size), 8):
        shutil.copyfile(sqlite_backup.path, sqlite_backup.path.with_suffix(".orig"))
        _flip(sqlite_backup.path, offset)
        result = validate(sqlite_backup.path)
        assert result.reason is FailureReason.DIGEST_MISMATCH, (offset, str(result))
        os.replace(sqlite_backup.path.with_suffix(".orig"), sqlite_backup.path)
    # sha256sum agrees that the damaged file is damaged: the anchor sees what we see.
    _flip(sqlite_backup.path, size // 3)
    check = subprocess.run(
        ["sha256sum", "-c", sqlite_backup.checksum_path.name],
        cwd=sqlite_backup.path.parent,
        capture_output=True,
        check=False,
    )
    assert check.returncode == 1


def _truncate(b: Backup, _: Path) -> None:
    with b.path.open("r+b") as handle:
        handle.truncate(b.size_bytes - 100)


def _empty(b: Backup, _: Path) -> None:
    b.path.write_bytes(b"")


def _two_lines(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, _line(b) * 2)


def _upper_hex(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, f"{b.sha256.upper()}  {b.path.name}\n".encode())


def _wrong_name(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, f"{b.sha256}  other.sqlite3\n".encode())


def _trailing_garbage(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, _line(b) + b"\x00garbage")


def _missing_manifest(b: Backup, _: Path) -> None:
    b.manifest_path.unlink()


def _other_manifest(b: Backup, other: Path) -> None:
    shutil.copyfile(other.with_name(other.name + ".manifest.json"), b.manifest_path)


def _symlink(b: Backup, _: Path) -> None:
    real = b.path.with_name("elsewhere.bin")
    os.replace(b.path, real)
    b.path.symlink_to(real)


def _missing(b: Backup, _: Path) -> None:
    b.path.unlink()


def _checksum_missing(b: Backup, _: Path) -> None:
    b.checksum_path.unlink()


def _no_newline(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, _line(b).rstrip(b"\n"))


def _short_digest(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, f"{b.sha256[:40]}  {b.path.name}\n".encode())


def _one_space(b: Backup, _: Path) -> None:
    _rewrite_checksum(b, f"{b.sha256} {b.path.name}\n".encode())


def _invalid_manifest(b: Backup, _: Path) -> None:
    doc = json.loads(b.manifest_path.read_text())
    del doc["tables"]
    b.manifest_path.write_text(json.dumps(doc))


def _grown(b: Backup, _: Path) -> None:
    with b.path.open("ab") as handle:
        handle.write(b"extra")


CASES: dict[str, tuple[Damage, FailureReason]] = {
    "truncated": (_truncate, FailureReason.TRUNCATED),
    "empty": (_empty, FailureReason.EMPTY),
    "checksum-two-lines": (_two_lines, FailureReason.CHECKSUM_LINE_COUNT),
    "checksum-upper-case-hex": (_upper_hex, FailureReason.CHECKSUM_UPPERCASE_HEX),
    "checksum-wrong-file-name": (_wrong_name, FailureReason.CHECKSUM_FILE_NAME),
    "checksum-trailing-garbage": (_trailing_garbage, FailureReason.CHECKSUM_TRAILING_BYTES),
    "manifest-missing": (_missing_manifest, FailureReason.MANIFEST_MISSING),
    "manifest-of-another-backup": (_other_manifest, FailureReason.MANIFEST_OTHER_BACKUP),
    "symlink-in-place-of-the-file": (_symlink, FailureReason.SYMLINK),
    "archive-missing": (_missing, FailureReason.MISSING),
    "checksum-missing": (_checksum_missing, FailureReason.CHECKSUM_MISSING),
    "checksum-without-newline": (_no_newline, FailureReason.CHECKSUM_NO_NEWLINE),
    "checksum-short-digest": (_short_digest, FailureReason.CHECKSUM_DIGEST_LENGTH),
    "checksum-one-space": (_one_space, FailureReason.CHECKSUM_SEPARATOR),
    "manifest-invalid": (_invalid_manifest, FailureReason.MANIFEST_INVALID),
    "archive-grown": (_grown, FailureReason.SIZE_MISMATCH),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_damage_is_caught_and_named(
    case: str, sqlite_backup: Backup, tmp_path: Path, populated_sqlite: str, admin: object
) -> None:
    from pytest_reliability.audit import InMemoryAuditLog
    from pytest_reliability.ops.backup_engine import BackupEngine

    other = BackupEngine.from_url(
        populated_sqlite, directory=tmp_path / "other", audit=InMemoryAuditLog()
    ).create(actor=admin, reason="another backup")  # type: ignore[arg-type]
    damage, reason = CASES[case]
    assert validate(sqlite_backup.path).ok
    damage(sqlite_backup, other.path)
    result = validate(sqlite_backup.path)
    assert not result.ok
    assert result.reason is reason, str(result)
    assert str(reason) in str(result)


def test_a_sqlite_archive_that_fails_integrity_check_is_named(sqlite_backup: Backup) -> None:
    # Damage a b-tree page, then re-seal checksum and manifest so only the archive check sees it.
    data = bytearray(sqlite_backup.path.read_bytes())
    page = 4096
    data[page * 2 + 8 : page * 2 + 40] = b"\xff" * 32
    sqlite_backup.path.write_bytes(bytes(data))
    import hashlib

    digest = hashlib.sha256(bytes(data)).hexdigest()
    sqlite_backup.checksum_path.write_text(f"{digest}  {sqlite_backup.path.name}\n")
    doc = json.loads(sqlite_backup.manifest_path.read_text())
    doc["archive"]["sha256"] = digest
    sqlite_backup.manifest_path.write_text(json.dumps(doc))
    result = validate(sqlite_backup.path)
    assert result.reason in (
        FailureReason.INTEGRITY_CHECK_FAILED,
        FailureReason.ARCHIVE_UNREADABLE,
    ), str(result)


@pytest.mark.postgres
def test_a_flipped_byte_in_a_pg_dump_is_caught_and_a_resealed_one_fails_pg_restore(
    pg_url: str, tmp_path: Path, admin: object
) -> None:
    import hashlib

    from harness.backup_drill import populate
    from pytest_reliability.audit import InMemoryAuditLog
    from pytest_reliability.ops.backup_engine import BackupEngine

    populate(pg_url, events=5)
    backup = BackupEngine.from_url(pg_url, directory=tmp_path, audit=InMemoryAuditLog()).create(
        actor=admin, reason="test"
    )  # type: ignore[arg-type]
    assert validate(backup.path).ok
    empty = tmp_path / "no-tools"
    empty.mkdir()
    missing_tool = validate(backup.path, pg_bin_dir=empty)
    assert missing_tool.reason is FailureReason.TOOL_UNAVAILABLE, str(missing_tool)
    _flip(backup.path, 2)
    assert validate(backup.path).reason is FailureReason.DIGEST_MISMATCH
    # Reseal the damaged header: only pg_restore --list can tell now.
    data = backup.path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    backup.checksum_path.write_text(f"{digest}  {backup.path.name}\n")
    doc = json.loads(backup.manifest_path.read_text())
    doc["archive"]["sha256"] = digest
    backup.manifest_path.write_text(json.dumps(doc))
    result = validate(backup.path)
    assert result.reason is FailureReason.ARCHIVE_UNREADABLE, str(result)
    assert "pg_restore --list" in result.detail
