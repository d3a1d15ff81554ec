"""Event-count series: validated buckets indexed once, so any window is summed in O(log n).

A bucket ``(timestamp, x, total)`` counts the events observed in the interval that ends at its
timestamp; ``x`` is the good (or bad) events of the SLI. A window ``(start, end]`` holds every
bucket stamped after ``start`` and up to ``end``. The series keeps the timestamps sorted and the
running sums of both counts, so the sum over a window is two binary searches and a subtraction.
"""

from __future__ import annotations

import math
import operator
import threading
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import accumulate, islice
from operator import itemgetter
from typing import Any, final

from pytest_reliability.errors import SLOCounterError, SLODataError, SLOWindowError
from pytest_reliability.ops.slo_engine._model import SLIKind, format_duration

Number = int | float
Timestamp = float | int | datetime


def to_seconds(when: object, *, index: int | None = None) -> float:
    """Return Unix seconds for a number or an aware datetime; naive datetimes are refused."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise SLODataError(
                f"timestamp {when.isoformat()} has no time zone: give UTC (aware) times",
                index=index,
            )
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise SLODataError(f"timestamp {when!r} is not a finite number or datetime", index=index)
    return float(when)


def _first(predicate: Any, *columns: Sequence[Any]) -> int:
    return next(i for i, row in enumerate(zip(*columns, strict=True)) if predicate(*row))


def _check_counts(xs: Sequence[Any], totals: Sequence[Any], kind: SLIKind) -> None:
    for column, name in ((xs, kind), (totals, "total")):
        try:
            # A sum of non-negative numbers is finite only if each one is (NaN and inf
            # propagate); one pass instead of a finiteness check per value.
            finite = min(column) >= 0 and math.isfinite(sum(column))
            if not finite and min(column) >= 0:
                finite = all(map(math.isfinite, column))
        except TypeError:
            i = _first(lambda v: isinstance(v, bool) or not isinstance(v, int | float), column)
            raise SLODataError(
                f"bucket {i}: {name} {column[i]!r} is not a number", index=i
            ) from None
        if not finite:
            i = _first(lambda v: not (math.isfinite(v) and v >= 0), column)
            raise SLODataError(
                f"bucket {i}: {name} count {column[i]!r} is negative or not finite", index=i
            )
    if any(map(operator.gt, xs, totals)):
        i = _first(operator.gt, xs, totals)
        raise SLODataError(
            f"bucket {i}: {kind} {xs[i]!r} is greater than total {totals[i]!r}", index=i
        )


def _columns(
    buckets: Iterable[tuple[Timestamp, Number, Number]], sli: SLIKind
) -> tuple[list[float], list[Number], list[Number], bool]:
    """Validate ``buckets``; return their times, bad and total counts sorted by time.

    The fourth value says whether the input was already strictly increasing in time.
    """
    rows = list(buckets)
    if not rows:
        return [], [], [], True
    try:
        shaped = set(map(len, rows)) == {3}
    except TypeError:
        shaped = False
    if not shaped:
        i = _first(lambda r: not (isinstance(r, tuple | list) and len(r) == 3), rows)
        raise SLODataError(f"bucket {i} is not (timestamp, count, total)", index=i)
    # One C-level pass a column (zip(*rows) is far slower with tens of thousands of rows).
    ts, xs, totals = (list(map(itemgetter(i), rows)) for i in range(3))
    _check_counts(xs, totals, sli)
    try:
        seconds: Sequence[float] = ts if math.isfinite(sum(ts)) else ()
    except TypeError:  # datetimes (or garbage): convert one by one, naming a bad one
        seconds = ()
    if len(seconds) != len(ts):
        seconds = tuple(to_seconds(t, index=i) for i, t in enumerate(ts))
    if sli == "good":
        xs = list(map(operator.sub, totals, xs))
    strictly = all(map(operator.lt, seconds, islice(seconds, 1, None)))
    if strictly:
        return list(seconds), xs, totals, True
    # Sorting the whole triple, not only the time, makes float sums independent of the input
    # order too (same-time buckets always add up in the same order).
    ordered = sorted(zip(seconds, xs, totals, strict=True))
    times, bad, total = (list(map(itemgetter(i), ordered)) for i in range(3))
    return times, bad, total, False


def _min_gap(times: list[float], strictly: bool) -> float:
    """The smallest positive gap between two of ``times`` (sorted), or 0.0 without one."""
    gaps = map(operator.sub, islice(times, 1, None), times)
    return min(gaps if strictly else (g for g in gaps if g > 0), default=0.0)


@final
class Series:
    """Validated, sorted buckets of one SLI with running sums; immutable once built.

    ``step`` is the bucket size in seconds: given, or the smallest gap between two timestamps.
    A window shorter than it cannot be answered from these buckets and raises
    :class:`~pytest_reliability.errors.SLOWindowError` rather than reading a partial bucket.
    """

    # The columns may be shared with series extended from this one, and may be longer than
    # ``_n``: an extension appends to them in place when no other extension did, so a series
    # only ever reads its own prefix, which never changes.
    __slots__ = ("_bad", "_fixed_step", "_lock", "_n", "_times", "_total", "step")

    def __init__(
        self,
        times: list[float],
        bad: list[Number],
        total: list[Number],
        step: float,
        *,
        fixed_step: bool = False,
    ):
        self._times = times
        self._bad = bad
        self._total = total
        self._n = len(times)
        self._lock = threading.Lock()
        self.step = step
        self._fixed_step = fixed_step

    @classmethod
    def from_buckets(
        cls,
        buckets: Iterable[tuple[Timestamp, Number, Number]],
        *,
        sli: SLIKind = "good",
        step: float | None = None,
    ) -> Series:
        """Index ``(timestamp, good_or_bad, total)`` buckets, in any order, gaps allowed.

        Several buckets may share a timestamp (they add up). Bad input raises
        :class:`~pytest_reliability.errors.SLODataError` naming the first offending bucket.
        """
        times, bad, total, strictly = _columns(buckets, sli)
        if not times:
            return cls([], [0], [0], step or 0.0, fixed_step=step is not None)
        return cls(
            times,
            list(accumulate(bad, initial=0)),
            list(accumulate(total, initial=0)),
            float(_min_gap(times, strictly) if step is None else step),
            fixed_step=step is not None,
        )

    def extended(
        self, buckets: Iterable[tuple[Timestamp, Number, Number]], *, sli: SLIKind = "good"
    ) -> Series:
        """Return this series with newer ``buckets`` added: what a service does every minute.

        The new buckets are validated as :meth:`from_buckets` validates, in any order among
        themselves, and must not be earlier than this series' last bucket (one at the same
        instant adds up with it); the result equals :meth:`from_buckets` over all the buckets.
        Only the new buckets are validated and summed, and the columns are shared with this
        series (which keeps reading only its own buckets), so adding one bucket to 30 days of
        them costs microseconds, not a re-index. An earlier bucket raises
        :class:`~pytest_reliability.errors.SLODataError` and leaves this series as it was.
        """
        times, bad, total, strictly = _columns(buckets, sli)
        if not times:
            return self
        n, last = self._n, self.last
        if last is not None and times[0] < last:
            raise SLODataError(
                f"bucket at {times[0]} is earlier than the series' last bucket at "
                f"{last}: index out-of-order history with Series.from_buckets"
            )
        if self._fixed_step:
            step = self.step
        else:
            joint = times[0] - last if last is not None else 0.0
            gaps = (self.step, _min_gap(times, strictly), joint)
            step = min((g for g in gaps if g > 0), default=0.0)
        bad_sums = islice(accumulate(bad, initial=self._bad[n]), 1, None)
        total_sums = islice(accumulate(total, initial=self._total[n]), 1, None)
        grown = Series.__new__(Series)
        with self._lock:
            if len(self._times) == n:
                # Nobody extended this series yet: grow its columns in place (amortised O(k)
                # for k new buckets), sharing them, and the lock, with the new series.
                self._times.extend(times)
                self._bad.extend(bad_sums)
                self._total.extend(total_sums)
                grown._times, grown._bad, grown._total = self._times, self._bad, self._total
                grown._lock = self._lock
            else:  # a sibling extended it first: copy this series' prefix
                grown._times = [*islice(self._times, n), *times]
                grown._bad = [*islice(self._bad, n + 1), *bad_sums]
                grown._total = [*islice(self._total, n + 1), *total_sums]
                grown._lock = threading.Lock()
        grown._n = n + len(times)
        grown.step = float(step)
        grown._fixed_step = self._fixed_step
        return grown

    @classmethod
    def from_counters(
        cls,
        samples: Iterable[tuple[Timestamp, Number, Number]],
        *,
        sli: SLIKind = "good",
    ) -> Series:
        """Index cumulative counter samples ``(timestamp, good_or_bad_total, total)``.

        Each sample after the first becomes a bucket of the increase since the previous one. A
        **reset** is a total that went down (the process restarted): the increase is then the
        new values themselves. A good or bad counter that goes down while the total does not is
        not a reset and raises :class:`~pytest_reliability.errors.SLOCounterError`.
        """
        rows = sorted((to_seconds(t, index=i), x, n) for i, (t, x, n) in enumerate(samples))
        _check_counts([r[1] for r in rows], [r[2] for r in rows], sli)
        buckets: list[tuple[float, Number, Number]] = []
        for i in range(1, len(rows)):
            (t0, x0, n0), (t1, x1, n1) = rows[i - 1], rows[i]
            if t1 == t0:
                raise SLOCounterError(f"two counter samples at {t1}", index=i)
            if n1 < n0:
                buckets.append((t1, x1, n1))
            elif x1 < x0:
                raise SLOCounterError(
                    f"sample at {t1}: the {sli} counter went down ({x0} -> {x1}) while the "
                    f"total did not ({n0} -> {n1}): not a counter reset",
                    index=i,
                )
            else:
                buckets.append((t1, x1 - x0, n1 - n0))
        return cls.from_buckets(buckets, sli=sli)

    def __len__(self) -> int:
        return self._n

    @property
    def first(self) -> float | None:
        """The earliest bucket's timestamp, or None for an empty series."""
        return self._times[0] if self._n else None

    @property
    def last(self) -> float | None:
        """The latest bucket's timestamp, or None for an empty series."""
        return self._times[self._n - 1] if self._n else None

    def check_window(self, seconds: float) -> None:
        """Raise SLOWindowError when ``seconds`` is shorter than the bucket size."""
        if seconds < self.step:
            raise SLOWindowError(
                f"window {format_duration(seconds)} is shorter than the bucket size "
                f"{format_duration(self.step)}: it cannot be read from these buckets",
                window=format_duration(seconds),
            )

    def sums(self, start: float, end: float) -> tuple[Number, Number]:
        """Return ``(bad, total)`` over the buckets stamped in ``(start, end]``."""
        lo = bisect_right(self._times, start, 0, self._n)
        hi = bisect_right(self._times, end, 0, self._n)
        if hi <= lo:
            return 0, 0
        return self._bad[hi] - self._bad[lo], self._total[hi] - self._total[lo]
