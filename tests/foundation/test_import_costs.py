"""What importing each public module costs: which heavy libraries it drags in.

Each case runs in a fresh interpreter, so nothing another test imported hides a cost. A library
added to a module's imports shows up here; moving an import behind first use is how to remove it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "hypothesis", "redis", "psycopg", "jsonschema", "docker", "pytest")

COSTS: dict[str, set[str]] = {
    # the base floor
    "import pytest_reliability": set(),
    "import pytest_reliability.errors": set(),
    "import pytest_reliability.ids": set(),
    "import pytest_reliability.tenancy": set(),
    "import pytest_reliability.clock": set(),
    "import pytest_reliability.protocols": set(),
    "import pytest_reliability.stores": set(),
    "import pytest_reliability.db": {"sqlalchemy"},
    "import pytest_reliability.audit": {"sqlalchemy"},
    # the modules: their packages load submodules on first use
    "import pytest_reliability.idempotency": set(),
    "from pytest_reliability.idempotency import crash_point, SimulatedCrash": set(),
    "from pytest_reliability.idempotency import MemoryStore, store_from_url": set(),
    "from pytest_reliability.idempotency import IdempotencyEngine": {"sqlalchemy"},
    "from pytest_reliability.idempotency import IdempotencyChecker": set(),
    "import pytest_reliability.ops": set(),
    "import pytest_reliability.ops.chaos_engine": set(),
    "from pytest_reliability.ops import ChaosEngine": set(),
    "from pytest_reliability.ops.chaos_engine import FaultSchedule, FaultTarget": set(),
    "import pytest_reliability.ops.rbac": set(),
    "import pytest_reliability.ops.degradation": set(),
    "import pytest_reliability.ops.health_checks": set(),
    "import pytest_reliability.ops.readiness_gates": set(),
    "import pytest_reliability.ops.kill_switch": {"sqlalchemy"},
    "from pytest_reliability.ops.kill_switch import KillSwitches\n"
    "KillSwitches.from_url('memory://', env={}, start=False).close()": {"sqlalchemy"},
    "import pytest_reliability.security": set(),
    "import pytest_reliability.security.abuse_protection": set(),
    "from pytest_reliability.security import AbuseProtection, Signal": set(),
    "from pytest_reliability.security import AbuseProtection\n"
    "AbuseProtection.from_url('memory://').close()": set(),
    # test tooling, report, plugin
    "import pytest_reliability.testing": set(),
    "import pytest_reliability.strategies": {"hypothesis"},
    "import pytest_reliability.report": set(),
    "from pytest_reliability.report import render_html, build_trend, annotations_of": set(),
    "from pytest_reliability.report import metrics_text": set(),
    "import pytest_reliability.fixtures": set(),
    "import pytest_reliability.hookspecs": {"pytest"},
    "from pytest_reliability.chaos_infra import DrillResult, record_drill": set(),
    "import pytest_reliability.tables": {"sqlalchemy"},
}

_PROBE = """
import json, sys
{statement}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))))
"""


def _cost(statement: str) -> set[str]:
    script = _PROBE.format(statement=statement, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("statement", sorted(COSTS))
def test_an_import_costs_only_what_it_needs(statement: str) -> None:
    assert _cost(statement) == COSTS[statement]


def test_chaos_loads_sqlalchemy_only_for_a_sql_fault() -> None:
    statement = (
        "from pytest_reliability.ops.chaos_engine import ChaosEngine\n"
        "engine = ChaosEngine(in_test=True, environ={})\n"
        "engine.raise_exception('json.dumps')\nengine.latency('json.loads', 0)\n"
        "engine.refuse_connections('127.0.0.1', 9)\nengine.restore()\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "from pytest_reliability.db import make_engine\n"
        "engine.database_error(make_engine('sqlite://'))\nengine.restore()\n"
        "assert 'pytest_reliability.ops.chaos_engine._sql' in sys.modules"
    )
    assert _cost(statement) == {"sqlalchemy"}
