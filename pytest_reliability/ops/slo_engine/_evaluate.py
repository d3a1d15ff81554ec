"""Evaluating an SLO at an instant: SLI, error budget, burn rates, time to exhaustion, alerts.

Definitions (``budget ratio`` is ``(100 - objective) / 100``):

* **SLI** over a window: good / total; ``None`` when the window saw no event (no traffic is
  neither an error nor a burn).
* **Burn rate** over a window: (bad / total) / budget ratio; 0 without traffic. 1 spends exactly
  the budget over the SLO window. With a 100 % objective any bad event burns infinitely fast.
* **Error budget** over the SLO window, in events: ``budget ratio * total``; consumed = bad
  events; remaining = budget - consumed (negative once overspent, so consumed + remaining is
  always the budget). As fractions of the budget: consumed = bad / budget, remaining = 1 -
  consumed.
* **Time to exhaustion**: the remaining fraction of the budget divided by the burn rate over the
  policy's current window, times the SLO period; ``None`` when nothing burns.
* An **alert** fires when the burn rate over both its long and its short window is above its
  threshold; compared as Sloth's rules compare it, error ratio ``>`` threshold * budget ratio,
  so the engine and the rendered rules agree to the last bit (and with no budget, any bad event
  fires).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, final

from pytest_reliability.errors import SLOWindowError
from pytest_reliability.ops.slo_engine._model import (
    DEFAULT_POLICY,
    SLO,
    AlertPolicy,
    Severity,
    format_duration,
    parse_duration,
)
from pytest_reliability.ops.slo_engine._series import Number, Series, Timestamp, to_seconds


@final
@dataclass(frozen=True, slots=True)
class WindowStats:
    """Counts and rates over one window ending at the evaluation instant."""

    window: float
    good: Number
    bad: Number
    total: Number
    sli: float | None
    burn_rate: float

    @property
    def error_ratio(self) -> float:
        """bad / total; 0 without traffic."""
        return self.bad / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (the window written as a Prometheus duration)."""
        return {
            "window": format_duration(self.window),
            "good": self.good,
            "bad": self.bad,
            "total": self.total,
            "sli": self.sli,
            "burn_rate": _json_float(self.burn_rate),
        }


@final
@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """The error budget of the SLO window, in events and as fractions of itself."""

    total_events: float
    consumed_events: Number
    remaining_events: float
    consumed: float
    remaining: float

    @property
    def exhausted(self) -> bool:
        """True once the bad events reached the budget (any bad event with no budget)."""
        return self.consumed_events > 0 and self.remaining_events <= 0


@final
@dataclass(frozen=True, slots=True)
class AlertState:
    """One rule's verdict: the burn rate over its two windows against its threshold."""

    name: str
    severity: Severity
    threshold: float
    budget_ratio: float
    long: WindowStats
    short: WindowStats

    @property
    def firing(self) -> bool:
        """True when both windows burn faster than the threshold."""
        limit = self.threshold * self.budget_ratio
        return self.long.error_ratio > limit and self.short.error_ratio > limit


@final
@dataclass(frozen=True, slots=True)
class SLOStatus:
    """Everything the engine says about one SLO at one instant."""

    slo: SLO
    at: float
    window: WindowStats
    budget: ErrorBudget
    current: WindowStats
    time_to_exhaustion: float | None
    alerts: tuple[AlertState, ...]

    @property
    def firing(self) -> tuple[AlertState, ...]:
        """The alerts that fire."""
        return tuple(a for a in self.alerts if a.firing)

    @property
    def page(self) -> bool:
        """True when a page alert fires."""
        return any(a.severity == "page" for a in self.firing)

    @property
    def ticket(self) -> bool:
        """True when a ticket alert fires."""
        return any(a.severity == "ticket" for a in self.firing)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the status (infinite values written as strings)."""
        b = self.budget
        return {
            "slo": self.slo.name,
            "objective": self.slo.objective,
            "window": str(self.slo.window),
            "at": self.at,
            "sli": self.window.sli,
            "events": {
                "good": self.window.good,
                "bad": self.window.bad,
                "total": self.window.total,
            },
            "budget": {
                "events": b.total_events,
                "consumed_events": b.consumed_events,
                "remaining_events": b.remaining_events,
                "consumed": _json_float(b.consumed),
                "remaining": _json_float(b.remaining),
                "exhausted": b.exhausted,
            },
            "current_burn_rate": _json_float(self.current.burn_rate),
            "time_to_exhaustion_s": self.time_to_exhaustion,
            "alerts": [
                {
                    "name": a.name,
                    "severity": a.severity,
                    "threshold": a.threshold,
                    "firing": a.firing,
                    "long": a.long.as_dict(),
                    "short": a.short.as_dict(),
                }
                for a in self.alerts
            ],
        }


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _stats(series: Series, budget_ratio: float, start: float, end: float) -> WindowStats:
    bad, total = series.sums(start, end)
    good = total - bad
    if total == 0:
        return WindowStats(end - start, good, bad, total, None, 0.0)
    # A 100 % objective has no budget: any bad event burns it infinitely fast.
    burn = (math.inf if bad else 0.0) if budget_ratio == 0.0 else (bad / total) / budget_ratio
    return WindowStats(end - start, good, bad, total, good / total, burn)


def window_stats(
    slo: SLO,
    data: Series | Iterable[tuple[Timestamp, Number, Number]],
    at: Timestamp,
    window: float | str,
) -> WindowStats:
    """SLI and burn rate of ``slo`` over any window ending at ``at`` (``"2h"`` or seconds).

    A window shorter than the bucket size raises
    :class:`~pytest_reliability.errors.SLOWindowError`, as in :func:`evaluate`.
    """
    series = data if isinstance(data, Series) else Series.from_buckets(data, sli=slo.sli)
    seconds = parse_duration(window) if isinstance(window, str) else float(window)
    if not seconds > 0:
        raise SLOWindowError(f"window {window!r} is empty", window=str(window))
    series.check_window(seconds)
    when = to_seconds(at)
    return _stats(series, slo.error_budget_ratio, when - seconds, when)


def evaluate(
    slo: SLO,
    data: Series | Iterable[tuple[Timestamp, Number, Number]],
    at: Timestamp,
    *,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> SLOStatus:
    """Evaluate ``slo`` at instant ``at`` over ``data`` (a :class:`Series` or raw buckets).

    Raw buckets are read as ``(timestamp, good, total)`` or ``(timestamp, bad, total)`` according
    to ``slo.sli``. Every window of ``policy`` must be at least the bucket size; all input is
    checked before anything is computed, so bad input raises and never yields a partial status.
    """
    series = data if isinstance(data, Series) else Series.from_buckets(data, sli=slo.sli)
    when = to_seconds(at)
    for seconds in (*policy.windows(), policy.current_window):
        series.check_window(seconds)
    ratio = slo.error_budget_ratio
    start, end = slo.window.bounds(when)
    period = slo.window.period(when)
    whole = _stats(series, ratio, start, end)
    budget_events = ratio * whole.total
    zero_budget = math.inf if whole.bad else 0.0
    consumed = whole.bad / budget_events if budget_events > 0 else zero_budget
    budget = ErrorBudget(
        total_events=budget_events,
        consumed_events=whole.bad,
        remaining_events=budget_events - whole.bad,
        consumed=consumed,
        remaining=1.0 - consumed,
    )
    current = _stats(series, ratio, when - policy.current_window, when)
    if budget.exhausted:
        exhaustion: float | None = 0.0
    elif current.burn_rate > 0:
        exhaustion = budget.remaining * period / current.burn_rate
    else:
        exhaustion = None
    alerts = tuple(
        AlertState(
            rule.name,
            rule.severity,
            rule.burn_rate_threshold(period),
            ratio,
            _stats(series, ratio, when - rule.long, when),
            _stats(series, ratio, when - rule.short, when),
        )
        for rule in policy.rules
    )
    return SLOStatus(slo, when, whole, budget, current, exhaustion, alerts)
