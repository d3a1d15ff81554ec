"""The databases a backup reads: SQLite through the online backup API, PostgreSQL via pg_dump.

Each source writes one archive to a temporary path and returns what it held at that instant
(:class:`Dumped`). Both are consistent while writers run: SQLite copies every page in one step of
the online backup API (a read transaction, so one snapshot); PostgreSQL counts and digests the
tables inside a ``REPEATABLE READ`` transaction whose snapshot it exports to ``pg_dump
--snapshot``, so the archive and the manifest describe the same instant.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, final

from sqlalchemy.engine import make_url

from pytest_reliability.errors import BackupDirectoryError, BackupError, BackupSourceUnavailable
from pytest_reliability.ops.backup_engine._content import pg_content, sqlite_content
from pytest_reliability.ops.backup_engine._manifest import Content, redact_url
from pytest_reliability.ops.backup_engine._pg_tools import (
    find_tool,
    libpq_env,
    psycopg_params,
    url_schema,
)

DEFAULT_DUMP_TIMEOUT_S = 3600.0
_LABEL_RE = re.compile(r"[^a-z0-9_-]+")
_TARGET_WRITE_ERRORS = frozenset(
    {
        "SQLITE_FULL",
        "SQLITE_CANTOPEN",
        "SQLITE_READONLY",
        "SQLITE_IOERR_WRITE",
        "SQLITE_IOERR_FSYNC",
        "SQLITE_IOERR_TRUNCATE",
    }
)


def _label(text: str) -> str:
    cleaned = _LABEL_RE.sub("-", text.lower()).strip("-_")[:48]
    return cleaned or "db"


@final
@dataclass(frozen=True, slots=True)
class Dumped:
    """What one dump produced besides the archive: content, tool versions, source facts."""

    content: Content
    tools: dict[str, str]
    source: dict[str, Any] = field(default_factory=dict)


class BackupSource(Protocol):
    """A database a :class:`~pytest_reliability.ops.backup_engine.BackupEngine` backs up."""

    backend: str
    label: str
    url: str

    def dump(self, archive: Path) -> Dumped:
        """Write a consistent archive to ``archive`` (a new file) and describe it."""
        ...


@final
class SqliteSource:
    """A SQLite file, copied with ``sqlite3.Connection.backup`` (the online backup API)."""

    backend = "sqlite"

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        if not database or database == ":memory:":
            raise BackupError("an in-memory SQLite database cannot be backed up from a URL")
        self.path = Path(database)
        self.url = redact_url(url)
        self.label = _label(self.path.stem)

    def dump(self, archive: Path) -> Dumped:
        """Copy every page in one step (one read snapshot) into ``archive``."""
        if not self.path.is_file():
            raise BackupSourceUnavailable(f"SQLite database {self.path} does not exist")
        try:
            # mode=rw: never create an empty database where the source should be.
            source = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise BackupSourceUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            target = sqlite3.connect(archive)
            try:
                source.backup(target)  # pages=-1: the whole file under one read lock
                # A self-contained file: no -wal beside the archive, whatever the source uses.
                target.execute("PRAGMA journal_mode = DELETE")
                content = sqlite_content(target)
            finally:
                target.close()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") in _TARGET_WRITE_ERRORS:
                # The source is only read: a failed write, sync or open is the backup directory.
                raise BackupDirectoryError(
                    f"backup directory {archive.parent} is full or not writable: {exc}"
                ) from exc
            raise BackupError(f"SQLite online backup of {self.path} failed: {exc}") from exc
        finally:
            source.close()
        return Dumped(content, {"sqlite": sqlite3.sqlite_version})


@final
class PostgresSource:
    """A PostgreSQL database (or the one schema its URL's ``search_path`` names), via pg_dump."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pg_bin_dir: Path | None = None,
        timeout_s: float = DEFAULT_DUMP_TIMEOUT_S,
    ) -> None:
        parsed = make_url(url)
        self._url = url
        self.url = redact_url(url)
        self.schema = url_schema(parsed)
        self.label = _label(f"{parsed.database or 'postgres'}-{self.schema or 'all'}")
        self._bin_dir = pg_bin_dir
        self._timeout = timeout_s

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(**psycopg_params(self._url))  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise BackupSourceUnavailable(
                f"PostgreSQL at {self.url} refused the connection: {exc}".strip()
            ) from exc

    def dump(self, archive: Path) -> Dumped:
        """Run ``pg_dump --format=custom`` on an exported snapshot; digest the same snapshot."""
        import psycopg

        conn = self._connect()
        try:
            facts = self._facts(conn)
            pg_dump = find_tool("pg_dump", server_major=facts["major"], bin_dir=self._bin_dir)
            cur = conn.cursor()
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            cmd = [str(pg_dump.path), "--format=custom", "--no-password"]
            cmd += [f"--snapshot={snapshot}", f"--file={archive}"]
            if self.schema is not None:
                cmd.append(f"--schema={self.schema}")
            proc = subprocess.Popen(
                cmd, env=libpq_env(self._url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                # Digest while pg_dump copies: both read the same exported snapshot.
                content = pg_content(cur, self.schema, self.schema or "public")
                _, err = proc.communicate(timeout=self._timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            conn.rollback()
        except psycopg.Error as exc:
            raise BackupSourceUnavailable(f"reading {self.url} failed: {exc}") from exc
        finally:
            conn.close()
        if proc.returncode != 0:
            last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            if "output file" in last:  # "could not open/write to output file": our directory
                raise BackupDirectoryError(f"pg_dump could not write the archive: {last}")
            raise BackupError(f"pg_dump exited with {proc.returncode}: {last}")
        source = {
            "schema": self.schema,
            "server_version": facts["version"],
            "system_identifier": facts["system_identifier"],
        }
        tools = {"pg_dump": pg_dump.version}
        return Dumped(content, tools, source)

    @staticmethod
    def _facts(conn: Any) -> dict[str, Any]:
        import psycopg

        cur = conn.cursor()
        cur.execute("SELECT current_setting('server_version_num')::int, version()")
        num, _ = cur.fetchone()
        version = f"{num // 10000}.{num % 10000}"
        system_id: str | None = None
        try:
            cur.execute("SELECT system_identifier::text FROM pg_control_system()")
            system_id = str(cur.fetchone()[0])
        except psycopg.errors.InsufficientPrivilege:
            pass  # not a superuser: the drill then relies on the port and data directory alone
        conn.rollback()
        return {"major": num // 10000, "version": version, "system_identifier": system_id}
