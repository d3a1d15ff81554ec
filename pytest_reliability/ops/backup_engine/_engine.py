"""The backup engine: RBAC, audit, atomic files, manifest; the dump itself is the source's job."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, final

from pytest_reliability._version import __version__
from pytest_reliability.errors import BackupError
from pytest_reliability.ops._rbac_model import PLATFORM_TENANT, Permission
from pytest_reliability.ops.backup_engine import _files
from pytest_reliability.ops.backup_engine._manifest import (
    MANIFEST_VERSION,
    encode_manifest,
    manifest_violations,
)
from pytest_reliability.ops.backup_engine._retention import (
    Backup,
    PruneResult,
    RetentionPolicy,
    list_backups,
    prune_backups,
)
from pytest_reliability.ops.backup_engine._schemes import source_from_url
from pytest_reliability.ops.backup_engine._sources import BackupSource
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, require_ops_permission
from pytest_reliability.protocols import AuditSink
from pytest_reliability.tenancy import tenant_scope

AUDIT_START = "backup.start"
AUDIT_SUCCESS = "backup.success"
AUDIT_FAILURE = "backup.failure"


@final
@dataclass(frozen=True, slots=True)
class _Names:
    archive: Path
    checksum: Path
    manifest: Path


@final
class BackupEngine:
    """Take, list and prune backups of one database into one directory.

    Every call needs an actor allowed by ``authz`` (``ops.backup.create``, ``ops.backup.read``,
    ``ops.backup.prune``; deny by default) and appends its decision and outcome to ``audit``
    in the platform chain. A failed backup leaves no file under a final name.
    """

    __slots__ = ("_audit", "_authz", "directory", "source")

    def __init__(
        self,
        source: BackupSource,
        directory: str | Path,
        *,
        audit: AuditSink,
        authz: AuthorizationEngine | None = None,
    ) -> None:
        self.source = source
        self.directory = Path(directory)
        self._audit = audit
        self._authz = authz if authz is not None else AuthorizationEngine()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        directory: str | Path,
        audit: AuditSink,
        authz: AuthorizationEngine | None = None,
        **source_options: Any,
    ) -> BackupEngine:
        """Build the engine for the database ``url`` names (``sqlite:///``, ``postgresql://``)."""
        return cls(source_from_url(url, **source_options), directory, audit=audit, authz=authz)

    def _allow(self, actor: OpsContext | str, permission: Permission) -> OpsContext:
        ctx = actor if isinstance(actor, OpsContext) else OpsContext(actor)
        require_ops_permission(
            self._authz, ctx, permission, audit=self._audit, target=f"backup:{self.source.url}"
        )
        return ctx

    def _event(
        self, action: str, ctx: OpsContext, outcome: str, details: Mapping[str, Any]
    ) -> None:
        with tenant_scope(PLATFORM_TENANT):
            self._audit.append(
                action,
                actor=ctx.actor,
                target=f"backup:{self.source.url}"[:255],
                outcome=outcome,
                details=dict(details),
            )

    def create(self, *, actor: OpsContext | str, reason: str) -> Backup:
        """Take a backup now and return it (archive, checksum file and manifest all published)."""
        ctx = self._allow(actor, Permission.BACKUP_CREATE)
        backup_id = secrets.token_hex(16)
        self._event(AUDIT_START, ctx, "started", {"backup_id": backup_id, "reason": reason})
        try:
            backup = self._create(ctx, backup_id, reason)
        except BaseException as exc:
            why = str(exc) or type(exc).__name__
            details = {"backup_id": backup_id, "reason": reason, "error": why[:2000]}
            self._event(AUDIT_FAILURE, ctx, "failed", details)
            if isinstance(exc, OSError):
                raise _files.directory_error(self.directory, exc) from exc
            raise
        details = {"backup_id": backup_id, "file": backup.path.name, "sha256": backup.sha256}
        self._event(AUDIT_SUCCESS, ctx, "ok", {**details, "size_bytes": backup.size_bytes})
        return backup

    def _create(self, ctx: OpsContext, backup_id: str, reason: str) -> Backup:
        directory = _files.prepare_directory(self.directory)
        created = datetime.now(UTC)
        stamp = created.strftime("%Y%m%dT%H%M%S%fZ")
        ext = _files.ARCHIVE_SUFFIXES[self.source.backend]
        name = f"{self.source.label}-{stamp}-{backup_id[:8]}{ext}"
        names = _Names(directory / name, *(f(directory / name) for f in _CHECKSUM_AND_MANIFEST))
        tmp = _files.temp_path(directory, name)
        published: list[Path] = []
        began = time.monotonic()
        try:
            dumped = self.source.dump(tmp)
            digest, size = _files.sha256_file(tmp)
            if size == 0:
                raise BackupError(f"the {self.source.backend} dump of {self.source.url} is empty")
            _files.publish(tmp, names.archive)
            published.append(names.archive)
            _files.write_new(directory, names.checksum.name, _files.checksum_line(digest, name))
            published.append(names.checksum)
            manifest = self._manifest(ctx, backup_id, reason, created, names, digest, size)
            manifest["tools"].update(dumped.tools)
            manifest["source"].update(dumped.source)
            manifest["tables"] = dumped.content.tables_json()
            manifest["audit_heads"] = dumped.content.heads_json()
            manifest["duration_s"] = round(time.monotonic() - began, 6)
            problems = manifest_violations(manifest)
            if problems:  # pragma: no cover - a bug in this module, never the user's input
                raise BackupError(f"internal error: the manifest is invalid: {problems[0]}")
            _files.write_new(directory, names.manifest.name, encode_manifest(manifest))
            published.append(names.manifest)
            _files.fsync_dir(directory)
        except BaseException:
            tmp.unlink(missing_ok=True)
            for path in reversed(published):
                path.unlink(missing_ok=True)
            raise
        return Backup(names.archive, manifest)

    def _manifest(
        self,
        ctx: OpsContext,
        backup_id: str,
        reason: str,
        created: datetime,
        names: _Names,
        digest: str,
        size: int,
    ) -> dict[str, Any]:
        return {
            "schema_version": MANIFEST_VERSION,
            "backup_id": backup_id,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "backend": self.source.backend,
            "source": {"url": self.source.url},
            "archive": {
                "file": names.archive.name,
                "format": "pg_dump-custom" if self.source.backend == "postgresql" else "sqlite3",
                "size_bytes": size,
                "sha256": digest,
            },
            "tools": {
                "pytest_reliability": __version__,
                "python": sys.version.split()[0],
            },
            "duration_s": 0.0,
            "tables": {},
            "audit_heads": {},
            "actor": ctx.actor,
            "reason": reason,
        }

    def list(self, *, actor: OpsContext | str) -> list[Backup]:
        """Return this directory's backups, oldest first; foreign files are ignored."""
        self._allow(actor, Permission.BACKUP_READ)
        return list_backups(self.directory)

    def prune(
        self, policy: RetentionPolicy, *, actor: OpsContext | str, reason: str
    ) -> PruneResult:
        """Delete backups outside ``policy``, only those older than a newer backup that validates.

        Nothing is deleted when no backup validates; only files of backups this engine wrote
        (name pattern and manifest agree) are ever deleted. The outcome is audited.
        """
        ctx = self._allow(actor, Permission.BACKUP_PRUNE)
        result = prune_backups(self.directory, policy, now=datetime.now(UTC))
        details = {
            "reason": reason,
            "deleted": [p.name for p in result.deleted][:100],
            "kept": len(result.kept),
            "validated": result.validated.name if result.validated else None,
            "note": result.note,
        }
        self._event("backup.prune", ctx, "ok" if result.validated else "skipped", details)
        return result


_CHECKSUM_AND_MANIFEST = (_files.checksum_path, _files.manifest_path)
