"""Hypothesis properties of the SLO engine (integer counts, so every sum is exact)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_reliability.errors import SLOWindowError
from pytest_reliability.ops.slo_engine import (
    DEFAULT_POLICY,
    SLO,
    RollingWindow,
    Series,
    evaluate,
)

DAY = 86400
AT = 10 * DAY
SLO_7D = SLO("api", 99.5, RollingWindow(7), sli="bad")
WINDOWS = (*DEFAULT_POLICY.windows(), 7 * DAY)


@st.composite
def buckets(draw: st.DrawFn, max_size: int = 60) -> list[tuple[int, int, int]]:
    """Buckets on a 5-minute grid over 10 days (gaps and shared timestamps allowed)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(1, AT // 300).map(lambda i: i * 300),
                st.integers(0, 1000),
                st.integers(0, 1000),
            ),
            max_size=max_size,
        )
    )
    return [(t, min(a, b), max(a, b)) for t, a, b in rows]


@settings(max_examples=150, deadline=None)
@given(buckets(), st.sampled_from([90.0, 99.0, 99.9, 99.99, 99.999]))
def test_consumed_plus_remaining_is_the_budget(
    rows: list[tuple[int, int, int]], obj: float
) -> None:
    series = Series.from_buckets(rows, sli="bad", step=300)
    status = evaluate(SLO("api", obj, sli="bad"), series, AT)
    budget = status.budget
    # Exact up to float rounding of the budget itself (0.1 x total is not exact in binary).
    total = budget.consumed_events + budget.remaining_events
    assert abs(total - budget.total_events) <= 1e-9 * max(1.0, budget.total_events)
    if budget.total_events > 0:
        assert abs(budget.consumed + budget.remaining - 1.0) < 1e-12


@settings(max_examples=150, deadline=None)
@given(buckets(), st.integers(1, 10))
def test_burn_rate_scales_linearly_with_bad_events(
    rows: list[tuple[int, int, int]], factor: int
) -> None:
    # Totals made large enough that factor x bad still fits; only the bad events change.
    base = [(t, bad, total * 10 + bad * factor) for t, bad, total in rows]
    scaled = [(t, bad * factor, total) for t, bad, total in base]
    one = evaluate(SLO_7D, Series.from_buckets(base, sli="bad", step=300), AT)
    many = evaluate(SLO_7D, Series.from_buckets(scaled, sli="bad", step=300), AT)
    pairs = [(a.long, b.long) for a, b in zip(one.alerts, many.alerts, strict=True)]
    pairs += [(one.window, many.window), (one.current, many.current)]
    for a, b in pairs:
        assert abs(b.burn_rate - factor * a.burn_rate) <= 1e-9 * max(1.0, b.burn_rate)


@settings(max_examples=150, deadline=None)
@given(buckets(), st.data())
def test_merging_adjacent_buckets_never_changes_a_windows_sli(
    rows: list[tuple[int, int, int]], data: st.DataObject
) -> None:
    ordered = sorted(rows)
    if len(ordered) < 2:
        return
    i = data.draw(st.integers(0, len(ordered) - 2))
    (t0, b0, n0), (t1, b1, n1) = ordered[i], ordered[i + 1]
    # Adjacent on the same side of every window edge (else the merge moves events across it).
    if any((t0 > AT - w) != (t1 > AT - w) for w in WINDOWS):
        return
    merged = [*ordered[:i], (t1, b0 + b1, n0 + n1), *ordered[i + 2 :]]
    before = Series.from_buckets(ordered, sli="bad", step=300)
    after = Series.from_buckets(merged, sli="bad", step=300)
    for w in WINDOWS:
        assert before.sums(AT - w, AT) == after.sums(AT - w, AT)
    assert evaluate(SLO_7D, before, AT) == evaluate(SLO_7D, after, AT)


@settings(max_examples=150, deadline=None)
@given(buckets(), st.randoms(use_true_random=False))
def test_evaluation_is_independent_of_input_order(rows: list[tuple[int, int, int]], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(rows)
    rnd.shuffle(shuffled)

    def status(r: list[tuple[int, float, float]]) -> object:
        return evaluate(SLO_7D, Series.from_buckets(r, sli="bad", step=300), AT)

    assert status(rows) == status(shuffled)  # type: ignore[arg-type]
    # Float counts too: same-time buckets always add up in the same order.
    floats = [(t, b + 0.1, n + 0.3) for t, b, n in rows]
    shuffled_floats = list(floats)
    rnd.shuffle(shuffled_floats)
    assert status(floats) == status(shuffled_floats)


@settings(max_examples=200, deadline=None)
@given(buckets(), st.integers(0, 60), st.sampled_from(["good", "bad"]), st.booleans())
def test_extending_a_series_equals_indexing_everything(
    rows: list[tuple[int, int, int]], cut: int, sli: str, fixed: bool
) -> None:
    ordered = sorted(rows)
    old, new = ordered[:cut], ordered[cut:]
    step = 300 if fixed else None
    whole = Series.from_buckets(ordered, sli=sli, step=step)  # type: ignore[arg-type]
    grown = Series.from_buckets(old, sli=sli, step=step).extended(  # type: ignore[arg-type]
        reversed(new),  # any order among the new buckets
        sli=sli,  # type: ignore[arg-type]
    )
    assert len(grown) == len(whole)
    assert grown.step == whole.step
    assert (grown.first, grown.last) == (whole.first, whole.last)
    for start in range(0, AT, 7 * 300):
        for span in (300, 3600, DAY, 7 * DAY):
            assert grown.sums(start, start + span) == whole.sums(start, start + span)
    assert _outcome(grown) == _outcome(whole)


def _outcome(series: Series) -> object:
    # Coarse buckets make the 5-minute window unreadable; both must then refuse alike.
    try:
        return evaluate(SLO_7D, series, AT)
    except SLOWindowError as exc:
        return str(exc)
