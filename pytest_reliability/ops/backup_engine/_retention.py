"""Finding this engine's backups in a directory, and retention (which ones to delete)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, final

from pytest_reliability.errors import BackupDirectoryError, ConfigurationError
from pytest_reliability.ops.backup_engine import _files
from pytest_reliability.ops.backup_engine._manifest import read_manifest


@final
@dataclass(frozen=True, slots=True)
class Backup:
    """A published backup: the archive ``path`` and its parsed ``manifest``."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def checksum_path(self) -> Path:
        """The ``sha256sum`` file beside the archive."""
        return _files.checksum_path(self.path)

    @property
    def manifest_path(self) -> Path:
        """The manifest beside the archive."""
        return _files.manifest_path(self.path)

    @property
    def backup_id(self) -> str:
        """The backup's unique id (32 hex digits)."""
        return str(self.manifest["backup_id"])

    @property
    def created_at(self) -> datetime:
        """When the backup was taken (UTC)."""
        return datetime.fromisoformat(str(self.manifest["created_at"]).replace("Z", "+00:00"))

    @property
    def sha256(self) -> str:
        """The archive's SHA-256 hex digest."""
        return str(self.manifest["archive"]["sha256"])

    @property
    def size_bytes(self) -> int:
        """The archive's size in bytes."""
        return int(self.manifest["archive"]["size_bytes"])


@final
@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Keep the newest ``keep_last`` backups and every backup younger than ``keep_within``.

    A backup either rule keeps survives; at least one rule must be set.
    """

    keep_last: int | None = None
    keep_within: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_last is None and self.keep_within is None:
            raise ConfigurationError("a retention policy needs keep_last or keep_within")
        if self.keep_last is not None and self.keep_last < 1:
            raise ConfigurationError(f"keep_last must be at least 1, not {self.keep_last}")
        if self.keep_within is not None and self.keep_within <= timedelta(0):
            raise ConfigurationError(f"keep_within must be positive, not {self.keep_within}")


@final
@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune did: deleted archives, kept backups, the newer backup that validated."""

    deleted: tuple[Path, ...]
    kept: tuple[Backup, ...]
    validated: Path | None
    note: str = ""


def list_backups(directory: Path) -> list[Backup]:
    """Return the backups in ``directory``, oldest first.

    A backup is an archive whose name has this engine's pattern and whose manifest names it;
    everything else (foreign files, half-written temporaries) is not listed.
    """
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackupDirectoryError(f"cannot read backup directory {directory}: {exc}") from exc
    found: list[Backup] = []
    for entry in entries:
        if _files.ARCHIVE_NAME_RE.fullmatch(entry.name) is None:
            continue
        path = Path(entry.path)
        try:
            manifest = read_manifest(_files.manifest_path(path))
        except (OSError, ValueError):
            continue
        if manifest["archive"]["file"] == entry.name:
            found.append(Backup(path, manifest))
    return sorted(found, key=lambda b: (b.created_at, b.path.name))


def prune_backups(directory: Path, policy: RetentionPolicy, *, now: datetime) -> PruneResult:
    """Apply ``policy`` to ``directory``; see :meth:`BackupEngine.prune`."""
    from pytest_reliability.ops.restore_validation import validate

    backups = list_backups(directory)
    newest_first = list(reversed(backups))
    validated = next((b for b in newest_first if validate(b.path).ok), None)
    if validated is None:
        note = "nothing deleted: no backup in the directory validates"
        return PruneResult((), tuple(backups), None, note)
    keep: set[Path] = {validated.path}
    if policy.keep_last is not None:
        keep.update(b.path for b in newest_first[: policy.keep_last])
    if policy.keep_within is not None:
        keep.update(b.path for b in backups if now - b.created_at < policy.keep_within)
    doomed = [b for b in backups if b.path not in keep and b.created_at < validated.created_at]
    deleted: list[Path] = []
    for backup in doomed:
        # The manifest goes first: a crash midway leaves an unlisted archive, never a listed
        # backup without its manifest.
        for path in (backup.manifest_path, backup.path, backup.checksum_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise BackupDirectoryError(f"cannot delete {path}: {exc.strerror}") from exc
        deleted.append(backup.path)
    if deleted:
        _files.fsync_dir(directory)
    kept = tuple(b for b in backups if b.path not in set(deleted))
    return PruneResult(tuple(deleted), kept, validated.path)
