"""The report's ``backups`` section: present exactly when a restore drill ran in the session."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.cli import main
from pytest_reliability.ops.backup_engine import BackupEngine
from pytest_reliability.ops.rbac import OpsContext
from pytest_reliability.ops.restore_drill import run_drill
from tests.plugin._helpers import REPORT, RunInner, load_report

DRILLS = """
import sqlite3
import pytest
from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.ops.backup_engine import BackupEngine
from pytest_reliability.ops.rbac import OpsContext
from pytest_reliability.ops.restore_drill import run_drill

@pytest.mark.parametrize("rows", [2, 5])
def test_drill(tmp_path, rows):
    db = tmp_path / "source.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.executemany("INSERT INTO orders (item) VALUES (?)", [(str(i),) for i in range(rows)])
    conn.commit()
    conn.close()
    engine = BackupEngine.from_url(
        f"sqlite:///{db}", directory=tmp_path / "backups", audit=InMemoryAuditLog()
    )
    admin = OpsContext("ci", roles=frozenset({"ops_admin"}))
    backup = engine.create(actor=admin, reason="drill in the suite")
    assert run_drill(backup.path).ok

def test_without_a_drill():
    pass
"""

# Imports the drill module (so it is loaded in every process) but runs no drill.
NO_DRILLS = """
from pytest_reliability.ops.restore_drill import run_drill

def test_plain():
    assert callable(run_drill)
"""


def _sqlite_drill(directory: Path) -> None:
    """Run one real drill in this (the outer) process."""
    db = directory / "outer.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    engine = BackupEngine.from_url(
        f"sqlite:///{db}", directory=directory / "outer-backups", audit=InMemoryAuditLog()
    )
    backup = engine.create(actor=OpsContext("ci", roles=frozenset({"ops_admin"})), reason="t")
    assert run_drill(backup.path).ok


def _assert_two_drills(report: dict[str, object]) -> None:
    backups = report["backups"]
    assert isinstance(backups, dict)
    assert backups["passed"] == 2
    assert backups["failed"] == 0
    drills = backups["drills"]
    assert sorted(d["rows_checked"] for d in drills) == [2, 5]
    assert {d["backend"] for d in drills} == {"sqlite"}
    assert all(d["status"] == "passed" and d["reason"] is None for d in drills)
    assert all(d["backup"].startswith("source-") for d in drills)


def test_a_drill_in_the_session_adds_a_schema_valid_backups_section(
    pytester: pytest.Pytester, run_inner: RunInner, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    result, report = run_inner()  # load_report checks the report against the schema
    result.assert_outcomes(passed=3)
    _assert_two_drills(report)
    assert list(report)[-1] == "backups"  # after the required parts, in canonical order
    capsys.readouterr()
    assert main(["report", "summary", "--format=text", str(pytester.path / REPORT)]) == 0
    assert "\nrestore drills: 2 passed, 0 failed\n" in capsys.readouterr().out
    assert main(["report", "summary", str(pytester.path / REPORT)]) == 0
    assert "- restore drills: 2 passed, 0 failed" in capsys.readouterr().out


def test_the_summary_names_the_first_failed_drill(
    pytester: pytest.Pytester, run_inner: RunInner, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    _, report = run_inner()
    # A drill that found a difference, as run_drill reports one (DrillResult.to_json).
    drill = report["backups"]["drills"][1]
    drill.update(status="failed", reason="table orders: 5 rows, manifest says 6 <b>")
    report["backups"].update(passed=1, failed=1)
    path = pytester.path / "failed.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    load_report(path)
    capsys.readouterr()
    assert main(["report", "summary", "--format=text", str(path)]) == 0
    expected = f"restore drills: 1 passed, 1 failed (first failure {drill['backup']}: table orders"
    assert expected in capsys.readouterr().out
    assert main(["report", "summary", str(path)]) == 0
    markdown = capsys.readouterr().out
    assert "- restore drills: 1 passed, 1 failed (first failure " in markdown
    assert "<b>" not in markdown
    assert "&lt;b&gt;" in markdown


def test_no_drill_in_the_session_means_no_backups_key(
    pytester: pytest.Pytester,
    run_inner: RunInner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A drill this process ran before the inner session is not the inner session's.
    _sqlite_drill(tmp_path)
    pytester.makepyfile(test_plain=NO_DRILLS)
    result, report = run_inner()
    result.assert_outcomes(passed=1)
    assert "backups" not in report
    capsys.readouterr()
    for fmt in ("text", "markdown"):
        assert main(["report", "summary", f"--format={fmt}", str(pytester.path / REPORT)]) == 0
        assert "restore drills" not in capsys.readouterr().out


@pytest.mark.slow
def test_drills_on_xdist_workers_reach_the_controllers_report(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(test_drills=DRILLS, test_plain=NO_DRILLS)
    result, report = run_inner("-p", "xdist", "-n", "2", subprocess=True)
    result.assert_outcomes(passed=4)
    assert len(report["run"]["workers"]) == 2
    _assert_two_drills(report)
    finished = [d["finished_at"] for d in report["backups"]["drills"]]
    assert finished == sorted(finished)


@pytest.mark.slow
def test_xdist_run_without_a_drill_has_no_backups_key(
    pytester: pytest.Pytester, run_inner: RunInner
) -> None:
    pytester.makepyfile(test_plain=NO_DRILLS, test_other=NO_DRILLS)
    result, report = run_inner("-p", "xdist", "-n", "2", subprocess=True)
    result.assert_outcomes(passed=2)
    assert "backups" not in report


def test_merge_keeps_every_shards_drills(pytester: pytest.Pytester, run_inner: RunInner) -> None:
    pytester.makepyfile(test_drills=DRILLS, test_plain=NO_DRILLS)
    shards = []
    for name, target in (("a", "test_drills.py"), ("b", "test_plain.py"), ("c", "test_drills.py")):
        run_inner(target)
        shards.append(pytester.path / f"shard-{name}.json")
        (pytester.path / REPORT).rename(shards[-1])
    out = pytester.path / "merged.json"
    assert main(["report", "merge", *map(str, shards), "-o", str(out)]) == 0
    merged = load_report(out)
    backups = merged["backups"]
    assert (backups["passed"], backups["failed"], len(backups["drills"])) == (4, 0, 4)
    assert main(["report", "merge", str(shards[1]), "-o", str(out)]) == 0
    assert "backups" not in load_report(out)
