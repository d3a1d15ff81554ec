"""The values the SLO engine works with: durations, SLO windows, the SLO itself, alert policies.

Everything here is immutable and pure: no clock, no I/O. Durations are seconds (floats) and are
written the way Prometheus writes them (``5m``, ``1h``, ``30d``, ``4w``, ``1h30m``).
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, final

from pytest_reliability.errors import SLOError, SLOObjectiveError, SLOWindowError

SLIKind = Literal["good", "bad"]
Severity = Literal["page", "ticket"]

_UNITS = {
    "y": 365 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_DURATION_RE = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


def parse_duration(text: str) -> float:
    """Return the seconds of a Prometheus duration (``5m``, ``1h30m``, ``30d``, ``4w``).

    Anything else, including zero, is an :class:`~pytest_reliability.errors.SLOWindowError`.
    """
    match = _DURATION_RE.fullmatch(text) if isinstance(text, str) else None
    if not text or match is None:
        raise SLOWindowError(
            f"unknown window {text!r}: write a Prometheus duration such as 5m, 1h or 30d",
            window=str(text),
        )
    seconds = sum(int(v) * _UNITS[u] for u, v in zip(_ORDER, match.groups(), strict=True) if v)
    if seconds <= 0:
        raise SLOWindowError(f"window {text!r} is empty", window=text)
    return seconds


def format_duration(seconds: float) -> str:
    """Write ``seconds`` as Prometheus does (``model.Duration.String``): ``30d``, ``4w``, ``1h``.

    Years and weeks are used only when they divide the duration exactly, as Prometheus does, so
    28 days is ``4w`` and 30 days ``30d`` (the names Sloth gives its recording rules).
    """
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    out = ""
    for unit in _ORDER:
        mult = round(_UNITS[unit] * 1000)
        if unit in ("y", "w") and ms % mult:
            continue
        if ms >= mult:
            out += f"{ms // mult}{unit}"
            ms %= mult
    return out


@final
@dataclass(frozen=True, slots=True)
class RollingWindow:
    """The last ``days`` days before the evaluation instant (the usual SLO window)."""

    days: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise SLOWindowError(f"rolling window of {self.days!r} days", window=str(self.days))

    def bounds(self, at: float) -> tuple[float, float]:
        """Return ``(start, end)``: the window holds buckets stamped in ``(start, end]``."""
        return at - self.days * 86400.0, at

    def period(self, at: float) -> float:
        """Return the length in seconds the budget is spread over."""
        return self.days * 86400.0

    def __str__(self) -> str:
        return format_duration(self.days * 86400.0)


@final
@dataclass(frozen=True, slots=True)
class CalendarMonth:
    """The calendar month (UTC) holding the evaluation instant, from its first midnight.

    UTC only: a calendar month in a local time zone would gain or lose an hour at daylight saving
    changes, so the engine does not offer one; convert timestamps to UTC first.
    """

    def bounds(self, at: float) -> tuple[float, float]:
        """Return ``(start, end)``: from the month's first instant (UTC) to ``at``."""
        when = datetime.fromtimestamp(at, UTC)
        return datetime(when.year, when.month, 1, tzinfo=UTC).timestamp(), at

    def period(self, at: float) -> float:
        """Return the length of the month holding ``at``, in seconds (28 to 31 days)."""
        when = datetime.fromtimestamp(at, UTC)
        return calendar.monthrange(when.year, when.month)[1] * 86400.0

    def __str__(self) -> str:
        return "calendar-month"


SLOWindow = RollingWindow | CalendarMonth


def parse_window(text: str) -> SLOWindow:
    """Parse an SLO window: ``calendar-month``, or a whole number of days (``30d``, ``4w``)."""
    if text in ("calendar-month", "month"):
        return CalendarMonth()
    seconds = parse_duration(text)
    if seconds % 86400:
        raise SLOWindowError(
            f"SLO window {text!r} is not a whole number of days (or calendar-month)", window=text
        )
    return RollingWindow(int(seconds // 86400))


def validate_objective(objective: object) -> float:
    """Return ``objective`` (percent) if it is a finite number in (0, 100], else raise."""
    if isinstance(objective, bool) or not isinstance(objective, int | float):
        raise SLOObjectiveError(f"objective {objective!r} is not a number", objective=objective)
    value = float(objective)
    if not math.isfinite(value) or not 0.0 < value <= 100.0:
        raise SLOObjectiveError(
            f"objective {objective!r} is outside (0, 100] percent", objective=objective
        )
    return value


@final
@dataclass(frozen=True, slots=True)
class SLO:
    """A service level objective over event counts.

    ``objective`` is a percentage in (0, 100] (``99.9``); 100 leaves no error budget, so any bad
    event exhausts it. ``sli`` says what the buckets carry beside the total: ``good`` events or
    ``bad`` ones. ``window`` is a :class:`RollingWindow` or a :class:`CalendarMonth`.
    """

    name: str
    objective: float
    window: SLOWindow = RollingWindow(30)
    sli: SLIKind = "good"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SLOError(f"SLO name {self.name!r} is empty")
        object.__setattr__(self, "objective", validate_objective(self.objective))
        if self.sli not in ("good", "bad"):
            raise SLOError(f"SLI kind {self.sli!r} is not good or bad")
        if not isinstance(self.window, RollingWindow | CalendarMonth):
            raise SLOWindowError(f"unknown SLO window {self.window!r}", window=str(self.window))

    @property
    def error_budget_ratio(self) -> float:
        """The allowed fraction of bad events: ``(100 - objective) / 100``, as Sloth computes it."""
        return (100.0 - self.objective) / 100.0


@final
@dataclass(frozen=True, slots=True)
class AlertRule:
    """One multiwindow, multi-burn-rate alert: both windows must burn faster than the threshold.

    ``budget_percent`` is the share of the whole window's budget the rule lets the long window
    consume before it fires (2 for the workbook's first page); the burn-rate threshold follows
    from the SLO window, ``budget_percent / 100 * period / long`` (14.4 for 2 % of 30 days in
    1 h), computed in the order Sloth computes it so the rendered factors match to the digit.
    """

    name: str
    severity: Severity
    long: float
    short: float
    budget_percent: float

    def __post_init__(self) -> None:
        if self.severity not in ("page", "ticket"):
            raise SLOWindowError(f"alert severity {self.severity!r}", window=self.name)
        for seconds in (self.long, self.short):
            if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
                raise SLOWindowError(f"alert {self.name!r} window {seconds!r}", window=self.name)
        if self.short > self.long:
            raise SLOWindowError(
                f"alert {self.name!r}: short window is longer than the long one", window=self.name
            )
        if not 0.0 < self.budget_percent <= 100.0:
            raise SLOWindowError(
                f"alert {self.name!r}: budget percent {self.budget_percent!r} not in (0, 100]",
                window=self.name,
            )

    @classmethod
    def of(cls, name: str, severity: Severity, long: str, short: str, percent: float) -> AlertRule:
        """Build a rule from duration strings and the budget percent (``"1h", "5m", 2``)."""
        return cls(name, severity, parse_duration(long), parse_duration(short), float(percent))

    def burn_rate_threshold(self, period: float) -> float:
        """The burn rate above which the rule fires for an SLO window of ``period`` seconds."""
        # Sloth (internal/alert/window.go): percent * period hours / 100 / long-window hours.
        return self.budget_percent * (period / 3600.0) / 100.0 / (self.long / 3600.0)


@final
@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """A set of alert rules, and the window the "current" burn rate is read over."""

    rules: tuple[AlertRule, ...]
    current_window: float = 300.0

    def windows(self) -> tuple[float, ...]:
        """Every distinct window the policy reads, shortest first."""
        return tuple(sorted({w for r in self.rules for w in (r.long, r.short)}))


DEFAULT_POLICY = AlertPolicy(
    (
        AlertRule.of("page-1h", "page", "1h", "5m", 2),
        AlertRule.of("page-6h", "page", "6h", "30m", 5),
        AlertRule.of("ticket-3d", "ticket", "3d", "6h", 10),
    )
)
"""The SRE workbook's multiwindow, multi-burn-rate policy ("Alerting on SLOs", section 6)."""

SLOTH_POLICY = AlertPolicy(
    (
        AlertRule.of("page-quick", "page", "1h", "5m", 2),
        AlertRule.of("page-slow", "page", "6h", "30m", 5),
        AlertRule.of("ticket-quick", "ticket", "1d", "2h", 10),
        AlertRule.of("ticket-slow", "ticket", "3d", "6h", 10),
    )
)
"""The four windows Sloth generates (its ``google-30d`` and ``google-28d`` window catalogues)."""
