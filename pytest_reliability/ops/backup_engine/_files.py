"""Backup files on disk: names, atomic publication, checksum lines, digests.

A backup is three files side by side: the archive ``NAME``, its checksum ``NAME.sha256`` (one
``sha256sum`` line) and its manifest ``NAME.manifest.json``. Each is written under a hidden
temporary name, fsynced, then linked to its final name (which fails rather than overwrite) and
the directory fsynced, so a crash leaves either nothing or a whole file under the final name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from pathlib import Path

from pytest_reliability.errors import BackupDirectoryError

CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
ARCHIVE_SUFFIXES = {"postgresql": ".dump", "sqlite": ".sqlite3"}
ARCHIVE_NAME_RE = re.compile(
    r"(?P<label>[a-z0-9][a-z0-9_-]{0,62})-(?P<stamp>\d{8}T\d{12}Z)-(?P<id>[0-9a-f]{8})"
    r"(?P<ext>\.dump|\.sqlite3)"
)
_TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def checksum_path(archive: Path) -> Path:
    """Return the checksum file's path beside ``archive``."""
    return archive.with_name(archive.name + CHECKSUM_SUFFIX)


def manifest_path(archive: Path) -> Path:
    """Return the manifest's path beside ``archive``."""
    return archive.with_name(archive.name + MANIFEST_SUFFIX)


def checksum_line(digest: str, name: str) -> bytes:
    """Return the one ``sha256sum`` line for ``name``: ``<hex>  <name>\\n``."""
    return f"{digest}  {name}\n".encode()


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the SHA-256 hex digest and the size of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as handle:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def temp_path(directory: Path, final_name: str) -> Path:
    """Return a fresh hidden temporary name in ``directory`` for the future ``final_name``."""
    return directory / f"{_TEMP_PREFIX}{secrets.token_hex(6)}-{final_name}"


def is_our_temp(path: Path) -> bool:
    """Return whether ``path`` is a temporary name this module hands out."""
    return path.name.startswith(_TEMP_PREFIX)


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries (the rename) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush the contents of the file at ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Give the fsynced temporary file ``tmp`` its final name, never overwriting another file."""
    fsync_file(tmp)
    try:
        # link() refuses an existing target, unlike rename(): a foreign file is never replaced.
        os.link(tmp, final)
    except FileExistsError:
        raise BackupDirectoryError(
            f"{final.name} already exists in {final.parent}; refusing to overwrite it"
        ) from None
    except OSError as exc:
        raise directory_error(final.parent, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_new(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``directory/name`` atomically; the name must not exist yet."""
    tmp = temp_path(directory, name)
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise directory_error(directory, exc) from exc
    final = directory / name
    publish(tmp, final)
    return final


def directory_error(directory: Path, exc: OSError) -> BackupDirectoryError:
    """Turn an OS error on the backup directory into a :class:`BackupDirectoryError`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "is not writable"
    else:
        what = "cannot be written"
    return BackupDirectoryError(f"backup directory {directory} {what}: {exc.strerror or exc}")


def prepare_directory(directory: Path) -> Path:
    """Create ``directory`` if needed and check that backups can be written there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise directory_error(directory, exc) from exc
    if not directory.is_dir():
        raise BackupDirectoryError(f"backup directory {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackupDirectoryError(f"backup directory {directory} is not writable")
    return directory.resolve()
