"""Degradation modes: a ladder from NORMAL to EMERGENCY and a guard that sheds work by criticality.

The ladder (see ``docs/ops.md`` for why these four rungs)::

    mode             refuses                         ops level (status page)
    NORMAL           nothing                         operational
    DEGRADED         OPTIONAL                        degraded_performance
    PARTIAL_OUTAGE   OPTIONAL, DEFERRABLE            partial_outage
    EMERGENCY        every non-ESSENTIAL operation   major_outage

Code that does non-essential work calls :meth:`Degradation.guard` (a decorator and context
manager) with the operation's :class:`Criticality`; a refusal raises
:class:`~pytest_reliability.errors.OperationRefused` and is audited. Changing the mode needs the
``ops.degradation.set`` permission and is audited.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import final

from pytest_reliability.clock import system_clock
from pytest_reliability.errors import ConfigurationError, InvalidInput, OperationRefused
from pytest_reliability.ops._guard import Guard
from pytest_reliability.ops.rbac import (
    PLATFORM_TENANT,
    OpsContext,
    OpsSession,
    Permission,
    require_ops_permission,
)
from pytest_reliability.protocols import Clock
from pytest_reliability.tenancy import current_tenant_or_none, tenant_scope

__all__ = [
    "Criticality",
    "Degradation",
    "DegradationMode",
    "DegradationState",
    "OpsLevel",
    "ops_level",
]

REFUSAL_ACTION = "ops.degradation.refused"
SET_ACTION = "ops.degradation.set"


class DegradationMode(IntEnum):
    """How degraded the service is; higher sheds more."""

    NORMAL = 0
    DEGRADED = 1
    PARTIAL_OUTAGE = 2
    EMERGENCY = 3


class Criticality(IntEnum):
    """How much an operation matters; an operation runs while ``criticality > mode`` allows.

    ``ESSENTIAL`` always runs (authentication, reads of the user's own data, the ops control
    plane itself). The rest are non-essential and shed in order: OPTIONAL first.
    """

    OPTIONAL = 1
    DEFERRABLE = 2
    IMPORTANT = 3
    ESSENTIAL = 4


class OpsLevel(StrEnum):
    """The ops-friendly level of a mode, named as status pages name component states."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"


_LEVELS = {
    DegradationMode.NORMAL: OpsLevel.OPERATIONAL,
    DegradationMode.DEGRADED: OpsLevel.DEGRADED_PERFORMANCE,
    DegradationMode.PARTIAL_OUTAGE: OpsLevel.PARTIAL_OUTAGE,
    DegradationMode.EMERGENCY: OpsLevel.MAJOR_OUTAGE,
}


def ops_level(mode: DegradationMode) -> OpsLevel:
    """Return the ops level of ``mode``."""
    return _LEVELS[DegradationMode(mode)]


def allows(mode: DegradationMode, criticality: Criticality) -> bool:
    """Return whether an operation of ``criticality`` runs in ``mode``."""
    if criticality is Criticality.ESSENTIAL:
        return True
    if mode is DegradationMode.EMERGENCY:
        return False
    return int(criticality) > int(mode)


@final
@dataclass(frozen=True, slots=True)
class DegradationState:
    """The current mode, its level, who set it, why and when (epoch seconds)."""

    mode: DegradationMode
    level: OpsLevel
    reason: str
    actor: str
    changed_at: float


@final
class Degradation:
    """The process's degradation mode and the guard that sheds non-essential work. Thread-safe."""

    def __init__(self, session: OpsSession, *, clock: Clock | None = None) -> None:
        self.session = session
        self._clock: Clock = clock if clock is not None else system_clock
        self._lock = threading.Lock()
        self._mode = DegradationMode.NORMAL
        self._state = DegradationState(
            DegradationMode.NORMAL, OpsLevel.OPERATIONAL, "start", "system", self._clock.time()
        )

    @property
    def mode(self) -> DegradationMode:
        """The current mode (no RBAC: code paths read it to decide what to do)."""
        return self._mode

    def state(self, ctx: OpsContext) -> DegradationState:
        """The mode with who set it and why: needs ``ops.degradation.read``."""
        require_ops_permission(self.session, ctx, Permission.DEGRADATION_READ, target="degradation")
        return self._state

    def set_mode(self, mode: DegradationMode | str, *, reason: str, ctx: OpsContext) -> None:
        """Move to ``mode`` (any rung, up or down): needs ``ops.degradation.set``; audited."""
        target_mode = _parse_mode(mode)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise InvalidInput("a degradation change needs a reason of 1-500 characters")
        require_ops_permission(self.session, ctx, Permission.DEGRADATION_SET, target="degradation")
        with self._lock:
            previous = self._mode
            with tenant_scope(ctx.tenant):
                self.session.audit.append(
                    SET_ACTION,
                    actor=ctx.actor,
                    target="degradation",
                    outcome="success",
                    details={"from": previous.name, "to": target_mode.name, "reason": reason},
                )
            self._state = DegradationState(
                target_mode, ops_level(target_mode), reason, ctx.actor, self._clock.time()
            )
            self._mode = target_mode

    def check(self, operation: str, criticality: Criticality = Criticality.OPTIONAL) -> None:
        """Raise :class:`OperationRefused` (audited) if ``operation`` may not run now."""
        mode = self._mode
        if allows(mode, criticality):
            return
        tenant = current_tenant_or_none() or PLATFORM_TENANT
        with tenant_scope(tenant):
            self.session.audit.append(
                REFUSAL_ACTION,
                actor="system",
                target=f"operation:{operation}"[:200],
                outcome="refused",
                details={"mode": mode.name, "criticality": Criticality(criticality).name},
            )
        raise OperationRefused(
            f"{operation} ({Criticality(criticality).name}) refused in degradation mode {mode.name}"
        )

    def guard(self, operation: str, criticality: Criticality = Criticality.OPTIONAL) -> Guard:
        """A decorator and context manager calling :meth:`check` before the guarded code."""
        if not isinstance(operation, str) or not operation:
            raise ConfigurationError("a degradation guard needs an operation name")
        level = Criticality(criticality)
        check = functools.partial(self.check, operation, level)
        return Guard(check, f"degradation {operation} ({level.name})")


def _parse_mode(mode: DegradationMode | str) -> DegradationMode:
    if isinstance(mode, DegradationMode):
        return mode
    try:
        return DegradationMode[str(mode).strip().upper()]
    except KeyError:
        names = ", ".join(m.name for m in DegradationMode)
        raise ConfigurationError(f"unknown degradation mode {mode!r}; use one of {names}") from None
