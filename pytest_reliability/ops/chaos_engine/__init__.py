"""The chaos engine: faults injected on purpose, drawn from a seed, recorded and always removed.

See :class:`ChaosEngine` and ``docs/chaos.md``. The engine lives in ``_engine``, the trigger and
fault records in ``_fault``, the rule for where chaos may arm in ``_environment``; dotted-path
and socket patching in ``_patch`` and SQLAlchemy faults in ``_sql``, which loads (with
SQLAlchemy) only when a database fault is armed. Fault schedules (property-based chaos) are data
in ``_schedule`` and are armed through the engine by ``_apply``.
"""

from __future__ import annotations

from pytest_reliability.ops.chaos_engine._apply import (
    AppliedSchedule,
    HistoryEvent,
    PropertyStats,
)
from pytest_reliability.ops.chaos_engine._engine import (
    CHAOS_ENABLED_ENV,
    CI_ENV_VARS,
    NON_PRODUCTION_ENVIRONMENTS,
    PRODUCTION_ENV_VARS,
    PRODUCTION_VALUES,
    ChaosEngine,
    check_armable,
    production_environment,
)
from pytest_reliability.ops.chaos_engine._fault import ChaosTarget, Fault, Trigger
from pytest_reliability.ops.chaos_engine._schedule import (
    CALL_FAULT_KINDS,
    CONNECTION_FAULT_KINDS,
    DATABASE_FAULT_KINDS,
    FAULT_KINDS,
    SCHEDULE_VERSION,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)

__all__ = [
    "CALL_FAULT_KINDS",
    "CHAOS_ENABLED_ENV",
    "CI_ENV_VARS",
    "CONNECTION_FAULT_KINDS",
    "DATABASE_FAULT_KINDS",
    "FAULT_KINDS",
    "NON_PRODUCTION_ENVIRONMENTS",
    "PRODUCTION_ENV_VARS",
    "PRODUCTION_VALUES",
    "SCHEDULE_VERSION",
    "AppliedSchedule",
    "ChaosEngine",
    "ChaosTarget",
    "Fault",
    "FaultSchedule",
    "FaultTarget",
    "HistoryEvent",
    "PropertyStats",
    "ScheduledFault",
    "Trigger",
    "check_armable",
    "production_environment",
]
