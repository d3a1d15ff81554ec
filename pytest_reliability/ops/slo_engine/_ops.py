"""The SLO engine on the ops control plane: an RBAC-checked status read and a health check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import final

from pytest_reliability.ops.health_checks import HealthCheck, Status
from pytest_reliability.ops.rbac import OpsContext, OpsSession, Permission, require_ops_permission
from pytest_reliability.ops.slo_engine._evaluate import SLOStatus, evaluate
from pytest_reliability.ops.slo_engine._model import DEFAULT_POLICY, SLO, AlertPolicy
from pytest_reliability.ops.slo_engine._series import Number, Series, Timestamp

SLOData = Series | Iterable[tuple[Timestamp, Number, Number]]


def read_slo_status(
    session: OpsSession,
    ctx: OpsContext,
    slo: SLO,
    data: SLOData,
    at: Timestamp,
    *,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> SLOStatus:
    """Evaluate ``slo`` for an operator holding ``ops.slo.read`` (audited, allow or deny).

    The permission is checked before anything is read, so a denied caller learns nothing.
    """
    require_ops_permission(session, ctx, Permission.SLO_READ, target=f"slo:{slo.name}")
    return evaluate(slo, data, at, policy=policy)


@final
@dataclass(frozen=True, slots=True)
class SLOHealthCheck:
    """A health-snapshot check of one SLO's budget, for ``get_health_snapshot(extra_checks=)``.

    ``source`` returns the SLO's data when the snapshot is taken. The check is ``page_status``
    (``fail``) when a page alert fires, ``ticket_status`` (``warn``) when a ticket alert fires,
    ``exhausted_status`` (``warn``) when the budget is spent, else ``pass``; the worst applies.
    A source or an evaluation that raises fails the check (fail closed).
    """

    slo: SLO
    source: Callable[[], SLOData]
    policy: AlertPolicy = DEFAULT_POLICY
    page_status: Status = "fail"
    ticket_status: Status = "warn"
    exhausted_status: Status = "warn"

    @property
    def key(self) -> str:
        """The snapshot key, ``{slo name}:errorBudget``."""
        return f"{self.slo.name}:errorBudget"

    def __call__(self, now: datetime) -> HealthCheck:
        """Evaluate the SLO at ``now`` and grade it."""
        status = evaluate(self.slo, self.source(), now, policy=self.policy)
        ranked: list[tuple[Status, str]] = [("pass", "")]
        if status.page:
            ranked.append((self.page_status, "page alert firing"))
        if status.ticket:
            ranked.append((self.ticket_status, "ticket alert firing"))
        if status.budget.exhausted:
            ranked.append((self.exhausted_status, "error budget exhausted"))
        order = {"pass": 0, "warn": 1, "fail": 2}
        worst = max(order[s] for s, _ in ranked)
        verdict: Status = ("pass", "warn", "fail")[worst]
        reasons = [why for s, why in ranked if why and s != "pass"]
        firing = ", ".join(a.name for a in status.firing)
        output = "; ".join(reasons) + (f" ({firing})" if firing else "") if reasons else None
        remaining = status.budget.remaining
        value = round(remaining, 6) if remaining not in (float("inf"), float("-inf")) else None
        return HealthCheck(self.key, verdict, "slo", value, "ratio", output)
