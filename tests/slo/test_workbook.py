"""Test vectors from the Google SRE workbook, chapter "Alerting on SLOs".

Source: https://sre.google/workbook/alerting-on-slos/ , section 6 "Multiwindow, Multi-Burn-Rate
Alerts", table 10-6 ("Recommended parameters for a 99.9% SLO alerting configuration"):

    severity  long window  short window  burn rate  error budget consumed
    page      1 hour       5 minutes     14.4       2%
    page      6 hours      30 minutes    6          5%
    ticket    3 days       6 hours       1          10%

for a 30-day SLO window; and the chapter's formula (section 3, "Alert on burn rate"):
budget consumed = burn rate x alert window / period, so 14.4 x 1 h / 720 h = 2 %.
"""

from __future__ import annotations

import pytest

from pytest_reliability.errors import SLOWindowError
from pytest_reliability.ops.slo_engine import (
    DEFAULT_POLICY,
    SLO,
    CalendarMonth,
    RollingWindow,
    Series,
    evaluate,
    window_stats,
)

MINUTE = 60
DAYS_30 = 30 * 86400
PER_MINUTE = 1_000_000  # events a minute: fine enough to sit one event either side of a threshold


def traffic(bad_per_minute: int, minutes: int, *, end: int = DAYS_30) -> Series:
    """30 days of one-minute buckets; the last ``minutes`` have ``bad_per_minute`` bad events."""
    buckets = []
    for i in range(1, DAYS_30 // MINUTE + 1):
        t = i * MINUTE
        bad = bad_per_minute if end - minutes * MINUTE < t <= end else 0
        buckets.append((t, bad, PER_MINUTE))
    return Series.from_buckets(buckets, sli="bad")


SLO_999 = SLO("checkout", 99.9, RollingWindow(30), sli="bad")


@pytest.mark.parametrize(
    ("rule", "burn", "long_minutes", "short_minutes", "consumed"),
    [
        ("page-1h", 14.4, 60, 5, 0.02),
        ("page-6h", 6.0, 360, 30, 0.05),
        ("ticket-3d", 1.0, 3 * 1440, 360, 0.10),
    ],
)
def test_each_alert_fires_once_its_share_of_the_budget_is_spent(
    rule: str, burn: float, long_minutes: int, short_minutes: int, consumed: float
) -> None:
    threshold_bad = round(burn * 0.001 * PER_MINUTE)  # bad events a minute at exactly the burn
    status_by_rule = {r.name: r for r in DEFAULT_POLICY.rules}
    assert status_by_rule[rule].burn_rate_threshold(DAYS_30) == pytest.approx(burn)

    # One bad event a minute above the burn rate, for the whole long window: detection.
    above = evaluate(SLO_999, traffic(threshold_bad + 1, long_minutes), DAYS_30)
    state = next(a for a in above.alerts if a.name == rule)
    assert state.threshold == pytest.approx(burn)
    assert state.firing
    # Budget consumed at detection time is the table's figure.
    assert above.budget.consumed == pytest.approx(consumed, rel=0.01)
    assert above.budget.consumed + above.budget.remaining == pytest.approx(1.0)

    # One bad event a minute below it: no alert of this rule.
    below = evaluate(SLO_999, traffic(threshold_bad - 1, long_minutes), DAYS_30)
    assert not next(a for a in below.alerts if a.name == rule).firing

    # The long window alone is not enough: the same burn, stopped before the short window.
    ended = DAYS_30 - short_minutes * MINUTE
    stopped = evaluate(SLO_999, traffic(threshold_bad + 1, long_minutes, end=ended), DAYS_30)
    assert not next(a for a in stopped.alerts if a.name == rule).firing


def test_the_budget_in_events_is_the_objective_applied_to_the_traffic() -> None:
    status = evaluate(SLO_999, traffic(14410, 60), DAYS_30)
    total = PER_MINUTE * DAYS_30 // MINUTE
    assert status.window.total == total
    assert status.budget.total_events == pytest.approx(0.001 * total)
    assert status.budget.consumed_events == 14410 * 60
    assert status.budget.remaining_events == pytest.approx(0.001 * total - 14410 * 60)
    assert status.window.sli == pytest.approx(1 - 14410 * 60 / total)
    assert status.page
    assert not status.ticket


def test_time_to_exhaustion_at_the_current_burn() -> None:
    # 14.41x over the last 5 minutes with 97.99 % of the budget left: 0.9799 * 720 h / 14.41.
    status = evaluate(SLO_999, traffic(14410, 60), DAYS_30)
    expected = status.budget.remaining * DAYS_30 / status.current.burn_rate
    assert status.current.burn_rate == pytest.approx(14.41)
    assert status.time_to_exhaustion == pytest.approx(expected)
    assert status.time_to_exhaustion == pytest.approx(0.97998 * 720 * 3600 / 14.41, rel=1e-4)
    quiet = evaluate(SLO_999, traffic(0, 0), DAYS_30)
    assert quiet.time_to_exhaustion is None  # nothing burns
    assert not quiet.firing


@pytest.mark.parametrize(
    ("window", "at", "expected"),
    [
        # Scaled as the workbook explains: same budget shares, period / long window changes.
        (RollingWindow(30), DAYS_30, (14.4, 6.0, 1.0)),
        (RollingWindow(28), DAYS_30, (13.44, 5.6, 28 / 30)),
        (RollingWindow(7), DAYS_30, (3.36, 1.4, 7 / 30)),
        # February 2026 has 28 days; March 31 (the calendar month holding ``at``).
        (CalendarMonth(), 1_771_000_000, (13.44, 5.6, 28 / 30)),
        (CalendarMonth(), 1_773_500_000, (14.88, 6.2, 31 / 30)),
    ],
)
def test_thresholds_scale_to_the_slo_window(
    window: RollingWindow | CalendarMonth, at: int, expected: tuple[float, float, float]
) -> None:
    period = window.period(at)
    got = tuple(rule.burn_rate_threshold(period) for rule in DEFAULT_POLICY.rules)
    assert got == pytest.approx(expected)


def test_the_worked_example_of_docs_slo_md() -> None:
    slo = SLO("checkout", 99.9, RollingWindow(30), sli="bad")
    buckets = []
    for i in range(1, 43_201):
        t = i * 60
        bad = 20 if t > DAYS_30 - 3600 else (3 if t % 86400 < 600 else 0)
        buckets.append((t, bad, 1000))
    status = evaluate(slo, buckets, DAYS_30)
    assert status.budget.total_events == pytest.approx(43_200)
    assert status.budget.consumed_events == 2_097
    assert round(status.budget.consumed * 100, 2) == 4.85
    assert round(status.window.sli or 0, 7) == 0.9999515
    assert [a.name for a in status.firing] == ["page-1h"]
    page_6h = next(a for a in status.alerts if a.name == "page-6h")
    assert page_6h.short.burn_rate == pytest.approx(20)
    assert page_6h.long.burn_rate == pytest.approx(10 / 3)
    assert status.time_to_exhaustion is not None
    assert round(status.time_to_exhaustion / 3600, 1) == 34.3


def test_burn_rate_over_any_window() -> None:
    series = traffic(14410, 60)
    two_hours = window_stats(SLO_999, series, DAYS_30, "2h")
    assert two_hours.window == 7200
    assert two_hours.burn_rate == pytest.approx(14.41 / 2)  # half of the 2 h had errors
    assert window_stats(SLO_999, series, DAYS_30, 600).burn_rate == pytest.approx(14.41)
    with pytest.raises(SLOWindowError):
        window_stats(SLO_999, series, DAYS_30, "30s")  # shorter than the 1 m buckets
