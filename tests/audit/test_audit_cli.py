"""``pytest-reliability audit verify``: exit 0 when intact, 1 with a one-line reason when not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from pytest_reliability.audit import AuditLog
from pytest_reliability.cli import main
from pytest_reliability.db import create_schema
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.audit


def _fill(engine: Engine) -> None:
    create_schema(engine)
    with tenant_scope("acme"):
        for i in range(5):
            AuditLog(engine).append("a", actor="x", target=f"t{i}", outcome="ok")


def test_intact_log_exits_zero(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(engine)
    assert main(["audit", "verify", "--database-url", str(engine.url.render_as_string(False))]) == 0
    assert "intact: 5 events in 1 tenants" in capsys.readouterr().out


def test_tampered_log_exits_one_with_the_reason(sqlite_engine: Engine, sqlite_url: str) -> None:
    _fill(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_reliability",
            "audit",
            "verify",
            "--database-url",
            sqlite_url,
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stdout.strip().splitlines() == [
        out.stdout.strip(),
    ], "one line"
    assert "BROKEN" in out.stdout
    assert "changed event at sequence 3" in out.stdout
    assert "Traceback" not in out.stderr


def test_console_script_is_installed(sqlite_engine: Engine, sqlite_url: str) -> None:
    _fill(sqlite_engine)
    out = subprocess.run(
        ["pytest-reliability", "audit", "verify", "--database-url", sqlite_url, "--tenant", "acme"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_database_without_a_log_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()  # a database, with no audit tables
    assert main(["audit", "verify", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"]) == 1
    assert "no audit_events table" in capsys.readouterr().err


def test_bad_url_exits_one_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--database-url", "mysql://x/y"]) == 1
    assert "unsupported database URL scheme" in capsys.readouterr().err


def test_usage_errors_exit_two() -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit"])
    assert info.value.code == 2
