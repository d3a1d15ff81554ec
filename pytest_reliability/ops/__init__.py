"""The ops control plane: kill switches, RBAC, health, readiness, degradation, chaos.

The modules keep the names of the design (``kill_switch``, ``rbac``, ``health_checks``,
``readiness_gates``, ``degradation``, ``chaos_engine``); their public names are re-exported here.
"""

from __future__ import annotations

from pytest_reliability.ops._kill_switch_scenario import KillSwitchScenario
from pytest_reliability.ops.degradation import (
    Criticality,
    Degradation,
    DegradationMode,
    DegradationState,
    OpsLevel,
    ops_level,
)
from pytest_reliability.ops.health_checks import (
    HEALTH_CONTENT_TYPE,
    HealthCheck,
    HealthSnapshot,
    get_health_snapshot,
)
from pytest_reliability.ops.kill_switch import (
    OPS_KILL_SWITCH_ENV,
    KillSwitch,
    KillSwitches,
    KillSwitchStore,
    SwitchRecord,
    SwitchState,
    register_switch,
    registered_switches,
)
from pytest_reliability.ops.rbac import (
    PLATFORM_TENANT,
    AuthorizationEngine,
    Decision,
    OpsContext,
    OpsSession,
    Permission,
    PermissionSpec,
    known_permissions,
    register_permission,
    require_ops_permission,
)
from pytest_reliability.ops.readiness_gates import (
    GateResult,
    LivenessResult,
    ReadinessGate,
    ReadinessResult,
    check_liveness,
    run_readiness_gates,
)

__all__ = [
    "HEALTH_CONTENT_TYPE",
    "OPS_KILL_SWITCH_ENV",
    "PLATFORM_TENANT",
    "AuthorizationEngine",
    "Criticality",
    "Decision",
    "Degradation",
    "DegradationMode",
    "DegradationState",
    "GateResult",
    "HealthCheck",
    "HealthSnapshot",
    "KillSwitch",
    "KillSwitchScenario",
    "KillSwitchStore",
    "KillSwitches",
    "LivenessResult",
    "OpsContext",
    "OpsLevel",
    "OpsSession",
    "Permission",
    "PermissionSpec",
    "ReadinessGate",
    "ReadinessResult",
    "SwitchRecord",
    "SwitchState",
    "check_liveness",
    "get_health_snapshot",
    "known_permissions",
    "ops_level",
    "register_permission",
    "register_switch",
    "registered_switches",
    "require_ops_permission",
    "run_readiness_gates",
]
