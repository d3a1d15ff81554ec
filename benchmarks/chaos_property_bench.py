"""Property-based chaos: the cost of ``chaos.apply`` per example, and the time to shrink.

Run from the repository root::

    python3 benchmarks/chaos_property_bench.py [--examples 400] [--rounds 5] [--seeds 20]

**Overhead per example.** The anchor is a Hypothesis test drawing the same fault schedules
(``fault_schedules`` over three targets, up to three faults) whose body takes 100 us (a busy
wait) and calls each target once, without chaos. The measured test is the same with the body
inside ``engine.apply(schedule, targets=...)``: the faults armed, fired (latencies of 0 s, return
values, exceptions the body catches) and removed in every example. Both run ``--examples``
examples per round with a fixed seed, in A-B, B-A order over ``--rounds`` rounds; the table
gives the median CPU time (and wall time) per example and the ratios. Target: at most 1.2x.
``apply`` alone (0, 1 and 3 faults, no Hypothesis) is timed too.

**Time to shrink.** The proof of ``tests/chaos_property``: the checkout service that charges
twice when a refused connection and a late answer coincide. For each of ``--seeds`` seeds the
property runs (up to 200 examples) until the first failing example, then Hypothesis shrinks it;
the table gives examples to the first failure, time to find and time to shrink (median and
worst), and checks every shrunk schedule is the two-fault one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, seed, settings

from pytest_reliability.errors import ChaosInvariantViolated
from pytest_reliability.ops.chaos_engine import (
    ChaosEngine,
    FaultSchedule,
    FaultTarget,
    ScheduledFault,
)
from pytest_reliability.strategies import fault_schedules
from pytest_reliability.testing import assert_exactly_once
from tests.chaos_property import checkout


def fetch() -> str:
    """A call the body makes (faulted: latency, timeout, exception)."""
    return "ok"


def flag() -> bool:
    """A call the body makes (faulted: return value, exception)."""
    return True


def publish() -> None:
    """A call the body makes (faulted: latency, exception)."""


HERE = "__main__" if __name__ == "__main__" else __name__
TARGETS = [
    FaultTarget(f"{HERE}.fetch", kinds=("latency", "timeout", "exception"), max_seconds=0.0),
    FaultTarget(f"{HERE}.flag", kinds=("return_value", "exception"), values=(False, None)),
    FaultTarget(f"{HERE}.publish", kinds=("latency", "exception"), max_seconds=0.0),
]
_MODULE = sys.modules[__name__]


def _work(seconds: float = 100e-6) -> None:
    # 100 us of this process's CPU, not of the wall clock: on a shared machine the wall clock
    # also runs while other processes have the CPU.
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _body() -> None:
    _work()
    for call in (_MODULE.fetch, _MODULE.flag, _MODULE.publish):
        # An injected fault: the body carries on, as a service would.
        with contextlib.suppress(Exception):
            call()


def _run(examples: int, *, chaos: bool) -> tuple[float, float]:
    """Return CPU and wall seconds per example of one run of ``examples`` examples."""
    engine = ChaosEngine(in_test=True, environ={})
    done = [0]

    @seed(20261130)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fault_schedules(TARGETS, max_faults=3))
    def prop(schedule: FaultSchedule) -> None:
        done[0] += 1
        if chaos:
            with engine.apply(schedule, targets=TARGETS):
                _body()
        else:
            _body()

    cpu, wall = time.process_time(), time.perf_counter()
    prop()
    return (time.process_time() - cpu) / done[0], (time.perf_counter() - wall) / done[0]


def overhead(examples: int, rounds: int) -> None:
    """Print the per-example cost with and without chaos, and ``apply`` alone."""
    plain: list[tuple[float, float]] = []
    with_chaos: list[tuple[float, float]] = []
    _run(20, chaos=False)  # warm imports and caches
    _run(20, chaos=True)
    for i in range(rounds):
        # A-B then B-A: successive runs in one process drift slower (Hypothesis' caches grow),
        # so a fixed order would charge the drift to whichever always runs second.
        for chaos in (False, True) if i % 2 == 0 else (True, False):
            (with_chaos if chaos else plain).append(_run(examples, chaos=chaos))
    cpu = statistics.median(c for c, _ in plain), statistics.median(c for c, _ in with_chaos)
    wall = statistics.median(w for _, w in plain), statistics.median(w for _, w in with_chaos)
    print(f"\nOverhead per example ({examples} examples x {rounds} rounds, 100 us body)\n")
    print("| test | CPU us per example | ratio | wall us per example | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| Hypothesis, no chaos (anchor) | {cpu[0] * 1e6:,.0f} | 1.00x "
        f"| {wall[0] * 1e6:,.0f} | 1.00x |"
    )
    print(
        f"| Hypothesis + chaos.apply | {cpu[1] * 1e6:,.0f} | {cpu[1] / cpu[0]:.2f}x "
        f"| {wall[1] * 1e6:,.0f} | {wall[1] / wall[0]:.2f}x |"
    )

    engine = ChaosEngine(in_test=True, environ={})
    faults = [
        ScheduledFault(f"{HERE}.fetch", "timeout"),
        ScheduledFault(f"{HERE}.flag", "return_value", value=False),
        ScheduledFault(f"{HERE}.publish", "latency"),
    ]
    print("\n| apply alone (arm and remove) | CPU us |")
    print("|---|---:|")
    for size in (0, 1, 3):
        schedule = FaultSchedule(faults[:size])

        def once(schedule: FaultSchedule = schedule) -> None:
            with engine.apply(schedule, targets=TARGETS):
                pass

        timer = timeit.Timer(once, timer=time.process_time)
        best = min(timer.repeat(number=500, repeat=5)) / 500
        print(f"| {size} fault{'s' * (size != 1)} | {best * 1e6:,.0f} |")


def _find_and_shrink(hypothesis_seed: int) -> tuple[int, float, float, object]:
    """Run the broken checkout's property; return examples to the first failure, seconds to
    find it, seconds to shrink it, and the shrunk schedule."""
    targets = checkout.targets()
    engine = ChaosEngine(in_test=True, environ={})
    examples = 0
    first: float | None = None

    @seed(hypothesis_seed)
    @settings(max_examples=200, database=None, deadline=None, phases=[Phase.generate, Phase.shrink])
    @given(fault_schedules(targets, max_faults=4))
    def charged_once(schedule: FaultSchedule) -> None:
        nonlocal examples, first
        provider = checkout.Provider()
        with engine.apply(schedule, targets=targets) as run:
            try:
                acked = [checkout.CheckoutService(provider).pay("order-1", 4200)]
            except Exception:
                acked = []
        if first is None:
            examples += 1
        try:
            charged = provider.charged("order-1")
            assert_exactly_once(run, effects={"order-1": charged}, acknowledged={"order-1": acked})
        except ChaosInvariantViolated:
            if first is None:
                first = time.perf_counter()
            raise

    start = time.perf_counter()
    try:
        charged_once()
    except ChaosInvariantViolated as exc:
        end = time.perf_counter()
        found = first if first is not None else end
        return examples, found - start, end - found, exc.schedule
    raise SystemExit(f"seed {hypothesis_seed}: the double charge was not found in 200 examples")


def shrinking(seeds: int) -> None:
    """Print examples and time to find the double charge, and time to shrink it."""
    expected = {
        ScheduledFault(f"{checkout.__name__}.connect", "exception", error=ConnectionRefusedError),
        ScheduledFault(f"{checkout.__name__}.read_answer", "timeout"),
    }
    found_after: list[int] = []
    to_find: list[float] = []
    to_shrink: list[float] = []
    for s in range(seeds):
        examples, find, shrink, shrunk = _find_and_shrink(s)
        if not isinstance(shrunk, FaultSchedule) or set(shrunk) != expected or len(shrunk) != 2:
            raise SystemExit(f"seed {s}: shrunk to {shrunk!r}, not the two-fault schedule")
        found_after.append(examples)
        to_find.append(find)
        to_shrink.append(shrink)
    med, worst = statistics.median, max
    print(f"\nTime to shrink the double charge ({seeds} seeds, all shrunk to the two faults)\n")
    print("| | median | worst |")
    print("|---|---:|---:|")
    print(f"| examples to the first failure | {med(found_after):.0f} | {worst(found_after)} |")
    print(f"| time to find | {med(to_find) * 1e3:,.0f} ms | {worst(to_find) * 1e3:,.0f} ms |")
    print(f"| time to shrink | {med(to_shrink) * 1e3:,.0f} ms | {worst(to_shrink) * 1e3:,.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    if min(args.examples, args.rounds, args.seeds) < 1:
        parser.error("--examples, --rounds and --seeds must be 1 or more")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    overhead(args.examples, args.rounds)
    shrinking(args.seeds)
    print(f"\nload average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
