"""Each public ops module says exactly what it exports, and every export is documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = {
    "pytest_reliability.ops.kill_switch": {
        "DEFAULT_POLL_INTERVAL",
        "DEFAULT_STALENESS",
        "OPS_KILL_SWITCH_ENV",
        "KillSwitch",
        "KillSwitchStore",
        "KillSwitches",
        "SwitchRecord",
        "SwitchState",
        "register_switch",
        "registered_switches",
    },
    "pytest_reliability.ops.rbac": {
        "BUILTIN_ROLES",
        "PLATFORM_TENANT",
        "AuthorizationEngine",
        "Decision",
        "OpsContext",
        "OpsSession",
        "Permission",
        "PermissionSpec",
        "PermissionScope",
        "known_permissions",
        "register_permission",
        "require_ops_permission",
    },
    "pytest_reliability.ops.health_checks": {
        "HEALTH_CONTENT_TYPE",
        "HealthCheck",
        "HealthSnapshot",
        "Status",
        "get_health_snapshot",
    },
    "pytest_reliability.ops.readiness_gates": {
        "DEFAULT_GATE_TIMEOUT",
        "ReadinessGateResult",
        "LivenessResult",
        "ReadinessGate",
        "ReadinessResult",
        "check_liveness",
        "run_readiness_gates",
    },
    "pytest_reliability.ops.degradation": {
        "Criticality",
        "Degradation",
        "DegradationMode",
        "DegradationState",
        "OpsLevel",
        "ops_level",
    },
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert set(module.__all__) == MODULES[name]
    for export in module.__all__:
        obj = getattr(module, export)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{export} has no docstring"


def test_the_fixture_module_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_light():
            import pytest_reliability.fixtures._kill_switches  # noqa: F401
            assert "redis" not in sys.modules
            assert "psycopg" not in sys.modules
            assert "sqlalchemy" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:reliability", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
