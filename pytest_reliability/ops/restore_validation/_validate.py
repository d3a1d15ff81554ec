"""``validate(path)``: every check a backup can pass without touching any database server."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from pytest_reliability.errors import BackupToolError
from pytest_reliability.ops.backup_engine import _files
from pytest_reliability.ops.backup_engine._manifest import read_manifest
from pytest_reliability.ops.backup_engine._pg_tools import TOOL_TIMEOUT_S, find_tool
from pytest_reliability.ops.restore_validation._checksum import (
    MAX_CHECKSUM_BYTES,
    ChecksumFileError,
    FailureReason,
    parse_checksum,
)

_CHUNK = 1 << 20


@final
@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict on one backup: ``ok``, else the ``reason`` (a :class:`FailureReason`)."""

    path: Path
    ok: bool
    reason: FailureReason | None = None
    detail: str = ""
    size_bytes: int = 0
    duration_s: float = 0.0
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path.name}: valid ({self.size_bytes} bytes, sha256 and archive checked)"
        return f"{self.path.name}: INVALID ({self.reason}): {self.detail}"


class _Invalid(Exception):
    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _regular(path: Path, what: str, missing: FailureReason, odd: FailureReason) -> os.stat_result:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise _Invalid(missing, f"{what} {path.name} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        reason = FailureReason.SYMLINK if odd is FailureReason.NOT_REGULAR_FILE else odd
        raise _Invalid(reason, f"{what} {path.name} is a symbolic link, not the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise _Invalid(odd, f"{what} {path.name} is not a regular file")
    return st


def _digest(path: Path, expected_size: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    # O_NOFOLLOW: the file checked is the file hashed, even if someone swaps in a link meanwhile.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            size += n
    if size < expected_size:
        raise _Invalid(
            FailureReason.TRUNCATED,
            f"the archive has {size} bytes; the manifest says {expected_size}",
        )
    if size != expected_size:
        raise _Invalid(
            FailureReason.SIZE_MISMATCH,
            f"the archive has {size} bytes; the manifest says {expected_size}",
        )
    return digest.hexdigest(), size


def _check_pg_archive(path: Path, manifest: dict[str, Any], pg_bin_dir: Path | None) -> None:
    major = int(str(manifest["tools"].get("pg_dump", "0")).split(".")[0]) or None
    try:
        tool = find_tool("pg_restore", server_major=major, bin_dir=pg_bin_dir)
    except BackupToolError as exc:
        raise _Invalid(FailureReason.TOOL_UNAVAILABLE, str(exc)) from None
    # --list reads the archive's table of contents; it never connects to a server.
    proc = subprocess.run(
        [str(tool.path), "--list", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TOOL_TIMEOUT_S,
        env={"PATH": os.environ.get("PATH", "")},
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise _Invalid(FailureReason.ARCHIVE_UNREADABLE, f"pg_restore --list failed: {last}")


def _check_sqlite_archive(path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="reliability-validate-") as scratch:
        copy = Path(scratch) / "copy.sqlite3"
        shutil.copyfile(path, copy)
        try:
            conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            try:
                rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise _Invalid(
                FailureReason.ARCHIVE_UNREADABLE, f"not a SQLite database: {exc}"
            ) from None
    if rows != ["ok"]:
        raise _Invalid(FailureReason.INTEGRITY_CHECK_FAILED, "; ".join(rows[:3]))


def _run(path: Path, pg_bin_dir: Path | None) -> tuple[int, dict[str, Any]]:
    st = _regular(path, "archive", FailureReason.MISSING, FailureReason.NOT_REGULAR_FILE)
    if st.st_size == 0:
        raise _Invalid(FailureReason.EMPTY, f"archive {path.name} is empty")
    sums = _files.checksum_path(path)
    cst = _regular(
        sums,
        "checksum file",
        FailureReason.CHECKSUM_MISSING,
        FailureReason.CHECKSUM_NOT_REGULAR_FILE,
    )
    with sums.open("rb") as handle:
        data = handle.read(min(cst.st_size, MAX_CHECKSUM_BYTES) + 1)
    try:
        expected = parse_checksum(data, path.name)
    except ChecksumFileError as exc:
        raise _Invalid(exc.reason, exc.detail) from None
    mpath = _files.manifest_path(path)
    _regular(mpath, "manifest", FailureReason.MANIFEST_MISSING, FailureReason.MANIFEST_INVALID)
    try:
        manifest = read_manifest(mpath)
    except ValueError as exc:
        raise _Invalid(FailureReason.MANIFEST_INVALID, str(exc)) from None
    archive = manifest["archive"]
    if archive["file"] != path.name or archive["sha256"] != expected:
        raise _Invalid(
            FailureReason.MANIFEST_OTHER_BACKUP,
            f"the manifest describes {archive['file']} (sha256 {archive['sha256'][:12]}...), "
            f"not this archive",
        )
    digest, size = _digest(path, int(archive["size_bytes"]))
    if digest != expected:
        raise _Invalid(
            FailureReason.DIGEST_MISMATCH,
            f"sha256 is {digest}; the checksum file says {expected}",
        )
    if manifest["backend"] == "postgresql":
        _check_pg_archive(path, manifest, pg_bin_dir)
    else:
        _check_sqlite_archive(path)
    return size, manifest


def validate(path: str | Path, *, pg_bin_dir: Path | None = None) -> ValidationResult:
    """Check a backup without connecting to any database; never raises for a bad backup.

    In order: the archive is a regular, non-empty file (not a symlink); its checksum file is one
    strict ``sha256sum`` line naming it; its manifest validates and describes this archive; size
    and SHA-256 match; ``pg_restore --list`` reads it (PostgreSQL) or ``PRAGMA integrity_check``
    passes on a read-only copy (SQLite). The first failure is the result's ``reason``.
    """
    path = Path(path)
    began = time.monotonic()
    try:
        size, manifest = _run(path, pg_bin_dir)
    except _Invalid as exc:
        return ValidationResult(
            path, False, exc.reason, exc.detail, duration_s=time.monotonic() - began
        )
    except OSError as exc:
        detail = f"cannot read {exc.filename or path}: {exc.strerror or exc}"
        return ValidationResult(
            path,
            False,
            FailureReason.ARCHIVE_UNREADABLE,
            detail,
            duration_s=time.monotonic() - began,
        )
    return ValidationResult(path, True, None, "", size, time.monotonic() - began, manifest)
