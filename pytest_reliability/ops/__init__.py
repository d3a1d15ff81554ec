"""The ops control plane: kill switches, RBAC, health, readiness, degradation, chaos.

The modules keep the names of the design (``kill_switch``, ``rbac``, ``health_checks``,
``readiness_gates``, ``degradation``, ``chaos_engine``); their public names are re-exported here
and load on first use, so importing one module (``pytest_reliability.ops.chaos_engine``) costs
only that module's imports, not SQLAlchemy or redis.

``GateResult`` and ``Scope`` are deprecated aliases of :class:`ReadinessGateResult` and
``PermissionScope`` (they clashed with ``report.GateResult`` and ``idempotency.Scope``); they
warn on use and are removed in 0.2.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_reliability._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_reliability.ops.chaos_engine import (
        CHAOS_ENABLED_ENV,
        CI_ENV_VARS,
        NON_PRODUCTION_ENVIRONMENTS,
        PRODUCTION_ENV_VARS,
        PRODUCTION_VALUES,
        ChaosEngine,
        ChaosTarget,
        Fault,
        Trigger,
        check_armable,
        production_environment,
    )
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
        Status,
        get_health_snapshot,
    )
    from pytest_reliability.ops.kill_switch import (
        DEFAULT_POLL_INTERVAL,
        DEFAULT_STALENESS,
        OPS_KILL_SWITCH_ENV,
        KillSwitch,
        KillSwitches,
        KillSwitchStore,
        SwitchRecord,
        SwitchState,
        register_switch,
        registered_switches,
    )
    from pytest_reliability.ops.kill_switch._scenario import KillSwitchScenario
    from pytest_reliability.ops.rbac import (
        BUILTIN_ROLES,
        PLATFORM_TENANT,
        AuthorizationEngine,
        Decision,
        OpsContext,
        OpsSession,
        Permission,
        PermissionScope,
        PermissionSpec,
        known_permissions,
        register_permission,
        require_ops_permission,
    )
    from pytest_reliability.ops.readiness_gates import (
        DEFAULT_GATE_TIMEOUT,
        LivenessResult,
        ReadinessGate,
        ReadinessGateResult,
        ReadinessResult,
        check_liveness,
        run_readiness_gates,
    )

__all__ = [
    "BUILTIN_ROLES",
    "CHAOS_ENABLED_ENV",
    "CI_ENV_VARS",
    "DEFAULT_GATE_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_STALENESS",
    "HEALTH_CONTENT_TYPE",
    "NON_PRODUCTION_ENVIRONMENTS",
    "OPS_KILL_SWITCH_ENV",
    "PLATFORM_TENANT",
    "PRODUCTION_ENV_VARS",
    "PRODUCTION_VALUES",
    "AuthorizationEngine",
    "ChaosEngine",
    "ChaosTarget",
    "Criticality",
    "Decision",
    "Degradation",
    "DegradationMode",
    "DegradationState",
    "Fault",
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
    "PermissionScope",
    "PermissionSpec",
    "ReadinessGate",
    "ReadinessGateResult",
    "ReadinessResult",
    "Status",
    "SwitchRecord",
    "SwitchState",
    "Trigger",
    "check_armable",
    "check_liveness",
    "get_health_snapshot",
    "known_permissions",
    "ops_level",
    "production_environment",
    "register_permission",
    "register_switch",
    "registered_switches",
    "require_ops_permission",
    "run_readiness_gates",
]

_HOMES = {
    "AuthorizationEngine": ".rbac",
    "BUILTIN_ROLES": ".rbac",
    "CHAOS_ENABLED_ENV": ".chaos_engine",
    "CI_ENV_VARS": ".chaos_engine",
    "NON_PRODUCTION_ENVIRONMENTS": ".chaos_engine",
    "ChaosEngine": ".chaos_engine",
    "ChaosTarget": ".chaos_engine",
    "Criticality": ".degradation",
    "DEFAULT_GATE_TIMEOUT": ".readiness_gates",
    "DEFAULT_POLL_INTERVAL": ".kill_switch",
    "DEFAULT_STALENESS": ".kill_switch",
    "Decision": ".rbac",
    "Degradation": ".degradation",
    "DegradationMode": ".degradation",
    "DegradationState": ".degradation",
    "Fault": ".chaos_engine",
    "HEALTH_CONTENT_TYPE": ".health_checks",
    "HealthCheck": ".health_checks",
    "HealthSnapshot": ".health_checks",
    "KillSwitch": ".kill_switch",
    "KillSwitchScenario": ".kill_switch._scenario",
    "KillSwitchStore": ".kill_switch",
    "KillSwitches": ".kill_switch",
    "LivenessResult": ".readiness_gates",
    "OPS_KILL_SWITCH_ENV": ".kill_switch",
    "OpsContext": ".rbac",
    "OpsLevel": ".degradation",
    "OpsSession": ".rbac",
    "PLATFORM_TENANT": ".rbac",
    "PRODUCTION_ENV_VARS": ".chaos_engine",
    "PRODUCTION_VALUES": ".chaos_engine",
    "Permission": ".rbac",
    "PermissionScope": ".rbac",
    "PermissionSpec": ".rbac",
    "ReadinessGate": ".readiness_gates",
    "ReadinessGateResult": ".readiness_gates",
    "ReadinessResult": ".readiness_gates",
    "Status": ".health_checks",
    "SwitchRecord": ".kill_switch",
    "SwitchState": ".kill_switch",
    "Trigger": ".chaos_engine",
    "check_armable": ".chaos_engine",
    "check_liveness": ".readiness_gates",
    "get_health_snapshot": ".health_checks",
    "known_permissions": ".rbac",
    "ops_level": ".degradation",
    "production_environment": ".chaos_engine",
    "register_permission": ".rbac",
    "register_switch": ".kill_switch",
    "registered_switches": ".kill_switch",
    "require_ops_permission": ".rbac",
    "run_readiness_gates": ".readiness_gates",
}

__getattr__, __dir__ = lazy_exports(
    __name__,
    _HOMES,
    deprecated={"GateResult": "ReadinessGateResult", "Scope": "PermissionScope"},
)
