"""SLO engine: evaluating 30 days of one-minute buckets against a naive per-window summation.

The anchor, written here, does what a first implementation would: for each of the six windows of
the default policy (1h/5m, 6h/30m, 3d/6h) it scans every bucket and sums good and total events
of those inside the window. The engine is measured three ways, in the same process, alternating
with the anchor, best of ``--repeat`` runs:

* ``one-shot``: ``evaluate(slo, raw_buckets, at)`` from the raw list, so it validates, indexes
  (sorts, running sums) and evaluates: the six windows, plus the SLO window and the current
  window the anchor does not compute;
* ``indexed``: ``evaluate(slo, series, at)`` on a :class:`Series` indexed once (the steady state
  of a service that keeps its series and evaluates it every minute);
* ``replay``: evaluating at each of the last ``--replay`` minutes (an alert backtest): the engine
  indexes once, the anchor rescans for every instant;
* ``live``: what a service does every minute: a new bucket arrives and the SLO is evaluated
  again, for the last ``--replay`` minutes. The engine adds the bucket with
  :meth:`Series.extended` (validating only it) and evaluates; the anchor appends it to its list
  and rescans. Reported per minute.

Usage: ``python3 benchmarks/slo_bench.py [--sizes 10800,43200,172800,691200] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_reliability.ops.slo_engine import DEFAULT_POLICY, SLO, RollingWindow, Series, evaluate

WINDOWS = [w for rule in DEFAULT_POLICY.rules for w in (rule.long, rule.short)]  # the six
Bucket = tuple[int, int, int]


def make_buckets(n: int, seed: int = 7) -> list[Bucket]:
    """``n`` one-minute buckets ending at ``n * 60``: ~1000 requests, a few bad ones each."""
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        total = rnd.randint(900, 1100)
        out.append((i * 60, total - rnd.randint(0, 3), total))
    return out


def naive(buckets: list[Bucket], at: float) -> list[tuple[int, int]]:
    """The anchor: one full scan a window, summing good and total of the buckets inside it."""
    sums = []
    for window in WINDOWS:
        start = at - window
        good = total = 0
        for t, g, n in buckets:
            if start < t <= at:
                good += g
                total += n
        sums.append((good, total))
    return sums


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10800,43200,172800,691200")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--replay", type=int, default=60, help="instants for the replay case")
    args = parser.parse_args()
    slo = SLO("bench", 99.9, RollingWindow(30))
    print(f"python {sys.version.split()[0]}; best of {args.repeat}; six windows {WINDOWS}")
    header = (
        f"{'points':>8} {'naive ms':>9} {'one-shot ms':>11} {'ratio':>6} {'ns/point':>8} "
        f"{'indexed us':>10} {'ratio':>8} {'replay naive s':>14} {'replay ms':>9} {'ratio':>7} "
        f"{'live naive ms/min':>17} {'live ms/min':>11} {'ratio':>7}"
    )
    print(header)
    for n in (int(s) for s in args.sizes.split(",")):
        buckets = make_buckets(n)
        at = n * 60
        # The engine and the anchor agree on every window before anything is timed.
        series = Series.from_buckets(buckets)
        status = evaluate(slo, series, at)
        mine = [(a.long.good, a.long.total, a.short.good, a.short.total) for a in status.alerts]
        flat = [x for quad in mine for x in ((quad[0], quad[1]), (quad[2], quad[3]))]
        assert flat == naive(buckets, at), "engine and anchor disagree"

        t_naive = best(lambda: naive(buckets, at), args.repeat)  # noqa: B023 - same iteration
        t_one = best(lambda: evaluate(slo, buckets, at), args.repeat)  # noqa: B023
        t_idx = best(lambda: evaluate(slo, series, at), args.repeat * 20)  # noqa: B023
        instants = [at - 60 * k for k in range(args.replay)]
        t_rn = best(lambda: [naive(buckets, i) for i in instants], 1)  # noqa: B023

        def replay(b: list[Bucket] = buckets, ins: list[int] = instants) -> None:
            s = Series.from_buckets(b)
            for i in ins:
                evaluate(slo, s, i)

        t_re = best(replay, args.repeat)

        head, fresh = buckets[: n - args.replay], buckets[n - args.replay :]
        start = Series.from_buckets(head)

        def live_engine(s: Series = start, new: list[Bucket] = fresh) -> None:
            for bucket in new:
                s = s.extended([bucket])
                evaluate(slo, s, bucket[0])

        def live_naive(old: list[Bucket] = head, new: list[Bucket] = fresh) -> None:
            kept = list(old)
            for bucket in new:
                kept.append(bucket)
                naive(kept, bucket[0])

        t_ln = best(live_naive, 1) / args.replay
        t_le = best(live_engine, args.repeat) / args.replay
        print(
            f"{n:>8} {t_naive * 1e3:>9.1f} {t_one * 1e3:>11.1f} {t_naive / t_one:>5.1f}x "
            f"{t_one / n * 1e9:>8.0f} {t_idx * 1e6:>10.1f} {t_naive / t_idx:>7.0f}x "
            f"{t_rn:>14.2f} {t_re * 1e3:>9.1f} {t_rn / t_re:>6.0f}x "
            f"{t_ln * 1e3:>17.2f} {t_le * 1e3:>11.3f} {t_ln / t_le:>6.0f}x"
        )


if __name__ == "__main__":
    main()
