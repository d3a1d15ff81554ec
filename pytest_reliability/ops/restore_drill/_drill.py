"""``run_drill(path)``: restore a backup into isolated infrastructure, prove the copy whole."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, final

from sqlalchemy.engine import make_url

from pytest_reliability._drill_outcome import check_expected, drill_counts
from pytest_reliability.errors import DrillTargetRefused, RestoreDrillError
from pytest_reliability.ops.backup_engine._content import compare, pg_content, sqlite_content
from pytest_reliability.ops.backup_engine._manifest import Content
from pytest_reliability.ops.backup_engine._pg_tools import libpq_env, psycopg_params
from pytest_reliability.ops.restore_drill._cluster import ThrowawayCluster, started_here
from pytest_reliability.ops.restore_validation import validate

DRILL_DATABASE = "reliability_drill"
RESTORE_TIMEOUT_S = 3600.0

_session_lock = threading.Lock()
_session: list[DrillResult] = []


@final
@dataclass(frozen=True, slots=True)
class DrillResult:
    """The outcome of one drill: ``ok``, the problems found, and the time to restore (RTO).

    ``expected`` is the outcome the caller declared: ``"failed"`` for a drill run on a backup
    with a planted fault, to prove the drill catches it (see :func:`run_drill`).
    """

    backup: Path
    backend: str
    ok: bool
    problems: tuple[str, ...]
    rto_s: float
    restore_s: float
    tables_checked: int
    rows_checked: int
    audit_events_verified: int
    finished_at: str
    expected: Literal["passed", "failed"] = "passed"

    @property
    def reason(self) -> str | None:
        """The first problem, or None when the drill passed."""
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        """Return the drill as the JSON object of a report's ``backups`` section."""
        return {
            "backup": self.backup.name,
            "backend": self.backend,
            "status": "passed" if self.ok else "failed",
            "reason": self.reason,
            "rto_s": round(self.rto_s, 6),
            "restore_s": round(self.restore_s, 6),
            "tables_checked": self.tables_checked,
            "rows_checked": self.rows_checked,
            "audit_events_verified": self.audit_events_verified,
            "finished_at": self.finished_at,
            # Only a planted drill says so: the objects of ordinary drills stay as they were.
            **({"expected": self.expected} if self.expected != "passed" else {}),
        }


def _refuse_pg_target(target: str, manifest: dict[str, Any]) -> tuple[str, int]:
    t = make_url(target)
    s = make_url(manifest["source"]["url"])
    host, port = t.host or "127.0.0.1", t.port or 5432
    if (host, port) == (s.host or "127.0.0.1", s.port or 5432) and t.database == s.database:
        raise DrillTargetRefused(f"drill target {t.render_as_string()} is the source database")
    if not started_here(host, port):
        raise DrillTargetRefused(
            f"drill target {host}:{port} is not a throwaway server this drill started"
        )
    return host, port


def _audit_verify(url: str) -> tuple[int, str | None]:
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import make_engine

    engine = make_engine(url)
    try:
        result = AuditLog(engine).verify()
    finally:
        engine.dispose()
    return result.events_checked, (None if result.break_ is None else str(result.break_))


def _pg_restore(
    path: Path, manifest: dict[str, Any], cluster: ThrowawayCluster
) -> tuple[float, Content, int, str | None]:
    import psycopg

    # The cluster is ours, so its system identifier can never be the source's; check anyway.
    with psycopg.connect(**psycopg_params(cluster.url()), autocommit=True) as conn:  # type: ignore[arg-type]
        sysid = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
        if sysid is not None and sysid[0] == manifest["source"].get("system_identifier"):
            raise DrillTargetRefused("the drill target has the source cluster's system identifier")
        conn.execute(f"CREATE DATABASE {DRILL_DATABASE}")
    url = cluster.url(DRILL_DATABASE)
    began = time.monotonic()
    proc = subprocess.run(
        [
            str(cluster.bin_dir / "pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
            f"--dbname={DRILL_DATABASE}",
            str(path),
        ],
        env=libpq_env(url),
        capture_output=True,
        text=True,
        timeout=RESTORE_TIMEOUT_S,
    )
    restore_s = time.monotonic() - began
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RestoreDrillError(f"pg_restore failed: {last}")
    schema = manifest["source"].get("schema")
    with psycopg.connect(**psycopg_params(url)) as conn:  # type: ignore[arg-type]
        cur = conn.cursor()
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        content = pg_content(cur, schema, schema or "public")
    events, broken = 0, None
    if manifest["audit_heads"] or any(n.endswith(".audit_events") for n in content.tables):
        search = f"?options=-csearch_path%3D{schema}" if schema else ""
        events, broken = _audit_verify(url + search)
    return restore_s, content, events, broken


def _sqlite_restore(
    path: Path, manifest: dict[str, Any], target: Path
) -> tuple[float, Content, int, str | None]:
    began = time.monotonic()
    shutil.copyfile(path, target)
    restore_s = time.monotonic() - began
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        content = sqlite_content(conn)
    finally:
        conn.close()
    events, broken = 0, None
    if manifest["audit_heads"] or "audit_events" in content.tables:
        events, broken = _audit_verify(f"sqlite:///{target}")
    return restore_s, content, events, broken


def _refuse_sqlite_target(target: Path, manifest: dict[str, Any]) -> None:
    source = make_url(manifest["source"]["url"]).database or ""
    if source and Path(source).resolve() == target.resolve():
        raise DrillTargetRefused(f"drill target {target} is the source database")
    if target.exists():
        raise DrillTargetRefused(f"drill target {target} exists; the drill only writes new files")


def run_drill(
    path: str | Path,
    *,
    target: str | None = None,
    pg_bin_dir: Path | None = None,
    expected: Literal["passed", "failed"] = "passed",
) -> DrillResult:
    """Restore the backup at ``path`` into a throwaway target and compare it with its manifest.

    PostgreSQL: a cluster made with ``initdb`` on a free port in a temporary directory, destroyed
    afterwards (``target`` may name such a cluster started by :class:`ThrowawayCluster` in this
    process; anything else, the source above all, raises :class:`DrillTargetRefused`). SQLite: a
    copy in a temporary directory (``target``: a new file path, deleted afterwards). Tables, row
    counts and content digests must equal the manifest's, the audit heads too, and the restored
    audit log must pass ``AuditLog.verify``. The result is recorded for the session's report.

    ``expected="failed"`` declares a drill of a backup with a planted fault (a changed manifest,
    a forged audit event): the report counts its failure as expected ("failed as planted") and
    its passing as a failure ("planted fault not caught").
    """
    expected = check_expected(expected)
    path = Path(path)
    valid = validate(path, pg_bin_dir=pg_bin_dir)
    if not valid.ok or valid.manifest is None:
        raise RestoreDrillError(f"backup does not validate ({valid.reason}): {valid.detail}")
    manifest = valid.manifest
    began = time.monotonic()
    if manifest["backend"] == "postgresql":
        if target is not None:
            _refuse_pg_target(target, manifest)
        major = int(str(manifest["source"].get("server_version") or "0").split(".")[0]) or None
        with ThrowawayCluster(server_major=major, pg_bin_dir=pg_bin_dir) as cluster:
            restore_s, content, events, broken = _pg_restore(path, manifest, cluster)
            rto_s = time.monotonic() - began
    else:
        with tempfile.TemporaryDirectory(prefix="reliability-drill-") as scratch:
            copy = Path(target) if target is not None else Path(scratch) / path.name
            if target is not None:
                _refuse_sqlite_target(copy, manifest)
            try:
                restore_s, content, events, broken = _sqlite_restore(path, manifest, copy)
                rto_s = time.monotonic() - began
            finally:
                copy.unlink(missing_ok=True)
    problems = compare(manifest, content)
    if broken is not None:
        problems.append(f"audit chain of the restored copy is broken: {broken}")
    result = DrillResult(
        backup=path,
        backend=str(manifest["backend"]),
        ok=not problems,
        problems=tuple(problems),
        rto_s=rto_s,
        restore_s=restore_s,
        tables_checked=len(content.tables),
        rows_checked=sum(t.rows for t in content.tables.values()),
        audit_events_verified=events,
        finished_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        expected=expected,
    )
    with _session_lock:
        _session.append(result)
    return result


def session_drills() -> tuple[DrillResult, ...]:
    """Return every drill run in this process, oldest first."""
    with _session_lock:
        return tuple(_session)


def backups_section(drills: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any] | None:
    """Return the reliability report's ``backups`` section, or None when no drill ran.

    ``drills`` are drill objects as :meth:`DrillResult.to_json` gives them, gathered elsewhere
    (the plugin passes those of one pytest session, xdist workers' included); by default every
    drill run in this process.

    ``passed`` counts the drills expected to pass that passed, ``failed`` every unexpected
    outcome (a failure, or a planted fault not caught). When any drill declared an expected
    outcome, ``expected_failures`` counts the planted drills that failed as planted.
    """
    found = [d.to_json() for d in session_drills()] if drills is None else [dict(d) for d in drills]
    if not found:
        return None
    counts = drill_counts(found)
    section: dict[str, Any] = {"drills": found, "passed": counts.passed, "failed": counts.failed}
    if counts.planted:
        section["expected_failures"] = counts.expected_failures
    return section
