"""The edge cases the engine defines, and bad input: typed errors, never a partial result."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pytest_reliability.errors import (
    SLOCounterError,
    SLODataError,
    SLOError,
    SLOObjectiveError,
    SLOWindowError,
)
from pytest_reliability.ops.slo_engine import (
    DEFAULT_POLICY,
    SLO,
    AlertPolicy,
    AlertRule,
    CalendarMonth,
    Series,
    evaluate,
    format_duration,
    parse_duration,
    parse_window,
)

DAY = 86400
AT = 40 * DAY


def minutes(count: int, good: int, total: int, *, end: int = AT) -> list[tuple[int, int, int]]:
    return [(end - i * 60, good, total) for i in range(count)]


def test_no_traffic_is_neither_an_error_nor_a_burn() -> None:
    status = evaluate(SLO("api", 99.9), [], AT)
    assert status.window.sli is None
    assert status.window.total == 0
    assert status.budget.consumed == 0.0
    assert status.budget.remaining == 1.0
    assert not status.budget.exhausted
    assert all(a.long.burn_rate == 0.0 and not a.firing for a in status.alerts)
    # Traffic long ago, none in the alert windows: no burn there either.
    old = evaluate(SLO("api", 99.9), [(AT - 10 * DAY, 0, 100)], AT)
    assert old.budget.exhausted
    assert all(a.short.sli is None and a.short.burn_rate == 0 for a in old.alerts)


def test_objective_of_100_percent_means_any_bad_event_exhausts_the_budget() -> None:
    clean = evaluate(SLO("api", 100), minutes(60, 1000, 1000), AT)
    assert clean.budget.total_events == 0
    assert not clean.budget.exhausted
    assert not clean.firing
    one_bad = evaluate(SLO("api", 100), [*minutes(60, 1000, 1000), (AT, 999, 1000)], AT)
    assert one_bad.budget.exhausted
    assert one_bad.budget.consumed == math.inf
    assert one_bad.time_to_exhaustion == 0.0
    assert one_bad.page  # burn rate is infinite over both windows
    assert one_bad.as_dict()["budget"]["consumed"] == "inf"


@pytest.mark.parametrize("objective", [99.999, 99.9999, 99.99999])
def test_many_nines_keep_their_budget(objective: float) -> None:
    total = 10**9
    ratio = (100 - objective) / 100
    bad = round(total * ratio / 2)  # half the budget
    status = evaluate(SLO("api", objective, sli="bad"), [(AT, bad, total)], AT)
    assert status.budget.consumed == pytest.approx(0.5, rel=1e-6)
    assert not status.budget.exhausted


@pytest.mark.parametrize("objective", [0, -1, 100.0001, 150, math.nan, math.inf, "99", True])
def test_objectives_outside_0_100_are_refused(objective: object) -> None:
    with pytest.raises(SLOObjectiveError) as info:
        SLO("api", objective)  # type: ignore[arg-type]
    assert info.value.objective is objective


def test_counter_resets_count_the_new_values() -> None:
    samples = [(0, 0, 0), (60, 90, 100), (120, 180, 200), (180, 5, 10), (240, 95, 110)]
    series = Series.from_counters(samples)
    assert series.sums(0, 240) == (10 + 10 + 5 + 10, 310)  # bad = total - good per interval
    assert series.sums(120, 180) == (5, 10)  # the reset interval: the new values themselves


def test_a_good_counter_going_down_without_a_reset_is_refused() -> None:
    with pytest.raises(SLOCounterError, match="not a counter reset") as info:
        Series.from_counters([(0, 50, 100), (60, 40, 120)])
    assert info.value.index == 1
    with pytest.raises(SLOCounterError, match="two counter samples"):
        Series.from_counters([(0, 50, 100), (0, 60, 120)])


@pytest.mark.parametrize(
    ("buckets", "words", "index"),
    [
        ([(0, 10, 5)], "greater than total", 0),
        ([(0, 1, 5), (60, -1, 5)], "negative", 1),
        ([(0, 1, 5), (60, 1, math.nan)], "negative or not finite", 1),
        ([(0, 1, 5), (60, "1", 5)], "not a number", 1),
        ([(0, 1, 5), (datetime(2026, 1, 1), 1, 5)], "no time zone", 1),
        ([(0, 1, 5), (60, 1)], r"is not \(timestamp, count, total\)", 1),
    ],
)
def test_bad_buckets_are_typed_errors_naming_the_bucket(
    buckets: list[tuple[object, ...]], words: str, index: int
) -> None:
    with pytest.raises(SLODataError, match=words) as info:
        evaluate(SLO("api", 99.0), buckets, AT)  # type: ignore[arg-type]
    assert info.value.index == index


def test_windows_shorter_than_the_buckets_are_refused() -> None:
    hourly = [(AT - h * 3600, 100, 100) for h in range(48)]
    with pytest.raises(SLOWindowError, match="shorter than the bucket size 1h") as info:
        evaluate(SLO("api", 99.9), hourly, AT)
    assert info.value.window == "5m"
    # A policy whose windows the buckets can answer works on the same data.
    coarse = AlertPolicy((AlertRule.of("page", "page", "6h", "1h", 5),), current_window=3600)
    assert evaluate(SLO("api", 99.9), hourly, AT, policy=coarse).budget.consumed == 0


@pytest.mark.parametrize("text", ["", "5", "5 m", "1.5h", "0m", "1x", "-5m", "m5"])
def test_unknown_windows_are_refused(text: str) -> None:
    with pytest.raises(SLOWindowError):
        parse_duration(text)


def test_window_parsing_and_formatting() -> None:
    assert parse_duration("1h30m") == 5400
    assert [format_duration(parse_duration(t)) for t in ("5m", "1h", "28d", "30d", "90m")] == [
        "5m", "1h", "4w", "30d", "1h30m"
    ]  # fmt: skip
    assert parse_window("calendar-month") == CalendarMonth()
    with pytest.raises(SLOWindowError, match="whole number of days"):
        parse_window("36h")


def test_calendar_month_is_utc_and_ignores_daylight_saving() -> None:
    # March 2026: Europe moves clocks on the 29th. In UTC the month is 31 days of 24 h.
    march_30 = datetime(2026, 3, 30, 12, tzinfo=UTC)
    start, _end = CalendarMonth().bounds(march_30.timestamp())
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 3, 1, tzinfo=UTC)
    assert CalendarMonth().period(march_30.timestamp()) == 31 * DAY
    # A bucket stamped just before the month starts belongs to February.
    buckets = [
        (datetime(2026, 3, 1, tzinfo=UTC) - timedelta(seconds=1), 0, 100),
        (datetime(2026, 3, 1, 0, 1, tzinfo=UTC), 100, 100),
        # An aware non-UTC time is converted, not misread: 13:00+02:00 is 11:00 UTC.
        (datetime(2026, 3, 30, 13, tzinfo=timezone(timedelta(hours=2))), 100, 100),
    ]
    series = Series.from_buckets(buckets, step=60)
    status = evaluate(SLO("api", 99.0, CalendarMonth()), series, march_30)
    assert status.window.total == 200
    assert status.window.bad == 0


def test_bad_input_leaves_no_partial_result() -> None:
    # The error comes before any evaluation: nothing is returned, nothing cached.
    slo = SLO("api", 99.9)
    good = minutes(10, 100, 100)
    with pytest.raises(SLOError):
        evaluate(slo, [*good, (AT, 101, 100)], AT)
    assert evaluate(slo, good, AT) == evaluate(slo, list(reversed(good)), AT)
    assert DEFAULT_POLICY.windows() == (300.0, 1800.0, 3600.0, 21600.0, 259200.0)


def test_extending_with_an_earlier_bucket_is_refused_and_changes_nothing() -> None:
    series = Series.from_buckets([(600, 9, 10), (1200, 10, 10)])
    with pytest.raises(SLODataError, match="earlier than the series' last bucket at 1200"):
        series.extended([(1800, 1, 1), (900, 1, 1)])
    assert len(series) == 2
    assert series.sums(0, 2000) == (1, 20)


def test_extending_validates_the_new_buckets_like_from_buckets() -> None:
    series = Series.from_buckets([(600, 9, 10)])
    with pytest.raises(SLODataError, match="bucket 1: good 11 is greater than total 10") as info:
        series.extended([(1200, 1, 1), (1800, 11, 10)])
    assert info.value.index == 1
    assert series.extended([]) is series


def test_extending_an_empty_series_and_at_the_same_instant() -> None:
    empty = Series.from_buckets([])
    grown = empty.extended([(600, 9, 10)]).extended([(600, 1, 2), (900, 3, 3)])
    assert grown.sums(0, 600) == (2, 12)
    assert grown.step == 300


def test_extensions_of_one_series_never_see_each_other() -> None:
    base = Series.from_buckets([(600, 9, 10)])
    left = base.extended([(1200, 0, 10)])  # grows the shared columns in place
    right = base.extended([(1200, 10, 10)])  # must copy: left already took the tail
    left_more = left.extended([(1800, 5, 5)])
    assert (len(base), len(left), len(right), len(left_more)) == (1, 2, 2, 3)
    assert base.sums(0, 10_000) == (1, 10)
    assert base.last == 600
    assert left.sums(0, 10_000) == (11, 20)
    assert right.sums(0, 10_000) == (1, 20)
    assert left_more.sums(0, 10_000) == (11, 25)


def test_threads_extending_one_series_each_get_their_own() -> None:
    base = Series.from_buckets([(60 * i, i, i) for i in range(1, 100)])
    results: dict[int, Series] = {}

    def grow(k: int) -> None:
        series = base
        for j in range(50):
            series = series.extended([(6000 + 60 * j, 0, k)])
        results[k] = series

    threads = [threading.Thread(target=grow, args=(k,)) for k in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    base_total = sum(range(1, 100))
    for k, series in results.items():
        assert len(series) == 149
        assert series.sums(0, 10**9) == (50 * k, base_total + 50 * k)
    assert len(results) == 8
    assert base.sums(0, 10**9) == (0, base_total)
