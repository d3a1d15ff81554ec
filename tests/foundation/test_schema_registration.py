"""Tables by registration: db creates what modules registered, and knows none of them by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pytest_reliability.db import metadata, register_tables
from pytest_reliability.errors import ConfigurationError

SHIPPED = {"audit_events", "audit_heads", "idempotency_records", "ops_kill_switches"} | {
    "abuse_state",
    "abuse_outbox",
}


def _run(script: str, db: Path) -> dict[str, list[str]]:
    """Run ``script`` in a fresh interpreter; it prints a JSON object as its last line."""
    out = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return result


_REPORT = """
import json, sqlalchemy as sa
upper = sorted(m for m in sys.modules if m.startswith(("pytest_reliability.audit",
    "pytest_reliability.idempotency", "pytest_reliability.ops")))
with engine.connect() as c:
    triggers = sorted(r[0] for r in c.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"))
tables = sorted(sa.inspect(engine).get_table_names())
print(json.dumps({"tables": tables, "triggers": triggers, "upper": upper}))
"""


def test_create_schema_from_db_alone_imports_and_creates_nothing_above_db(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom pytest_reliability.db import create_schema, make_engine\n"
        "engine = make_engine(sys.argv[1])\ncreate_schema(engine)\n" + _REPORT
    )
    assert _run(script, tmp_path / "a.db") == {"tables": [], "triggers": [], "upper": []}


def test_a_module_registers_its_tables_when_imported(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom pytest_reliability.db import create_schema, make_engine\n"
        "import pytest_reliability.idempotency._tables\n"
        "engine = make_engine(sys.argv[1])\ncreate_schema(engine)\n" + _REPORT
    )
    result = _run(script, tmp_path / "b.db")
    assert result["tables"] == ["idempotency_records"]
    assert result["triggers"] == []


def test_the_audit_log_brings_its_tables_and_triggers(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom pytest_reliability.db import create_schema, make_engine\n"
        "from pytest_reliability.audit import AuditLog\n"
        "engine = make_engine(sys.argv[1])\ncreate_schema(engine)\n" + _REPORT
    )
    result = _run(script, tmp_path / "c.db")
    assert result["tables"] == ["audit_events", "audit_heads"]
    assert "audit_events_extend_head" in result["triggers"]


def test_create_all_creates_everything_the_package_ships(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom pytest_reliability.db import make_engine\n"
        "from pytest_reliability.tables import create_all\n"
        "engine = make_engine(sys.argv[1])\ncreate_all(engine)\ncreate_all(engine)\n" + _REPORT
    )
    assert set(_run(script, tmp_path / "d.db")["tables"]) == SHIPPED


def test_a_table_on_the_metadata_but_not_registered_is_not_created(tmp_path: Path) -> None:
    script = (
        "import sys, sqlalchemy as sa\n"
        "from pytest_reliability.db import create_schema, make_engine, metadata, register_tables\n"
        "loose = sa.Table('loose', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
        "kept = sa.Table('kept', metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
        "register_tables(kept)\nregister_tables(kept)\n"
        "engine = make_engine(sys.argv[1])\ncreate_schema(engine)\n" + _REPORT
    )
    assert _run(script, tmp_path / "e.db")["tables"] == ["kept"]


def test_only_tables_on_the_package_metadata_register() -> None:
    other = sa.Table("elsewhere", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(ConfigurationError, match=r"pytest_reliability\.db\.metadata"):
        register_tables(other)
    with pytest.raises(ConfigurationError):
        register_tables("audit_events")  # type: ignore[arg-type]
    assert "elsewhere" not in metadata.tables
