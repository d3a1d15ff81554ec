"""The SLO engine's public surface is exactly what ``__all__`` says, and it is documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest_reliability.ops.slo_engine as slo_engine

PUBLIC = {
    "DEFAULT_POLICY",
    "SLO",
    "SLOTH_POLICY",
    "SLOTH_VERSION",
    "AlertPolicy",
    "AlertRule",
    "AlertState",
    "CalendarMonth",
    "ErrorBudget",
    "RollingWindow",
    "SLOHealthCheck",
    "SLOStatus",
    "Selector",
    "Series",
    "SlothAlert",
    "SlothSLO",
    "SlothSpec",
    "WindowStats",
    "evaluate",
    "format_duration",
    "go_float",
    "load_sloth_spec",
    "parse_duration",
    "parse_window",
    "read_slo_status",
    "render_sloth_rules",
    "series_from_scrapes",
    "sloth_rules",
    "window_stats",
}


def test_all_is_the_public_surface_and_documented() -> None:
    assert set(slo_engine.__all__) == PUBLIC
    for name in slo_engine.__all__:
        obj = getattr(slo_engine, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_evaluating_needs_neither_yaml_nor_prometheus_client() -> None:
    code = (
        "import sys; import pytest_reliability.ops.slo_engine as s;"
        "s.evaluate(s.SLO('a', 99.0), [(60, 1, 1)], 60);"
        "assert 'yaml' not in sys.modules and 'prometheus_client' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
