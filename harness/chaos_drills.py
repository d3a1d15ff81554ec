"""Outage drills: fault a containerised store under traffic, time fail-closed and recovery,
then check the history of every request.

A drill is one store (PostgreSQL or Redis in a container from the :class:`ContainerPool`) and one
fault (``pause``, ``kill`` or ``disconnect``). While worker processes send steady traffic
(:mod:`harness.drills.traffic`), each module's probe (:mod:`harness.drills.probes`) asks its
module again and again; the drill applies the fault, waits until every module failed closed,
undoes the fault, waits until every module serves again, stops the traffic, and checks the
history (:mod:`harness.drills.history`). One :class:`DrillResult` per module: the time to fail
closed and to recover, against each module's bound, the histories checked and the violations.
Results are recorded (:func:`record_drill`) for the report's ``chaos_drills`` section.

    python -m harness.chaos_drills                    # the full drill set; prints the section
    python -m harness.chaos_drills --quick            # the fast subset the unit suite runs
    python -m harness.chaos_drills --scenario postgres:kill --mode ack-early \\
        --expect-failed idempotency                   # a planted bug its drill must catch

A drill run against a planted bug declares the modules whose drill must fail
(``Scenario.expected_failed``, ``--expect-failed``): their results carry ``expected="failed"``,
so the report counts them as failed as planted, or as a failure when the drill missed the bug.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.drills import probes as probes_
from harness.drills.history import HistoryVerdict, Window, check_history
from harness.drills.probes import Probe
from harness.drills.traffic import (
    AUDIT_ACTION,
    Traffic,
    TrafficConfig,
    open_idempotency,
    read_log,
)
from pytest_reliability._drill_outcome import (
    PLANTED,
    drill_counts,
    drill_outcome,
    unplanted_violations,
)
from pytest_reliability.chaos_infra import (
    ContainerPool,
    DrillResult,
    chaos_drills_section,
    docker_client,
    record_drill,
)
from pytest_reliability.errors import DockerUnavailable

FAULTS: dict[str, tuple[str, str]] = {
    # fault -> (apply, undo) method names on ManagedContainer
    "pause": ("pause", "unpause"),
    "kill": ("kill", "start"),
    "disconnect": ("disconnect", "reconnect"),
}
MODULES: dict[str, tuple[str, ...]] = {
    "postgres": ("kill_switch", "readiness", "health", "idempotency", "audit", "abuse"),
    "redis": ("kill_switch", "abuse"),
}
"""The modules drilled against each store (the backup module joins PostgreSQL on request)."""
CLAIM_GRACE_S = 0.25
"""A handler may start this long after the fault: its claim committed just before it."""
MIN_HOLD_S = 1.0
"""A fault stays at least this long, so the traffic meets it."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One drill: a store, a fault, the modules asked, and the traffic sent meanwhile."""

    store: str
    fault: str
    modules: tuple[str, ...] = ()
    workers: int = 3
    mode: str = "correct"
    tail_s: float = 0.5
    """Seconds of traffic after every module recovered."""
    hold_s: float = MIN_HOLD_S
    """The fault stays at least this long (and until every module failed closed)."""
    expected_failed: tuple[str, ...] = ()
    """Modules whose drill is meant to fail: a planted bug (``mode``, a patched probe) they
    must catch. Their results carry ``expected="failed"``."""

    @property
    def name(self) -> str:
        """``store:fault``."""
        return f"{self.store}:{self.fault}"

    def drilled(self) -> tuple[str, ...]:
        """The modules this drill asks."""
        return self.modules or MODULES[self.store]


@dataclass(slots=True)
class _Sampler:
    """Asks one probe again and again on its own thread; keeps every answer with its timing."""

    probe: Probe
    samples: list[tuple[float, float, str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"drill-{self.probe.module}")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            t0 = time.time()
            try:
                verdict, detail = self.probe.ask()
            except Exception as exc:  # a probe that raises is an answer too: not a closed one
                verdict, detail = "other", f"bad: the probe raised {type(exc).__name__}: {exc}"
            self.samples.append((t0, time.time(), verdict, detail))
            self.stop.wait(self.probe.pace_s)

    def seen(self, verdict: str, after: float) -> bool:
        return any(v == verdict and t1 >= after for _, t1, v, _ in list(self.samples))

    def finish(self, timeout: float = 30.0) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout)


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _judge(
    probe: Probe, samples: list[tuple[float, float, str, str]], window: Window
) -> tuple[float | None, float | None, list[str]]:
    """Time to fail closed and to recover, and what went wrong, from one probe's answers."""
    problems: list[str] = []
    if not any(v == "healthy" and t1 < window.fault_at for _, t1, v, _ in samples):
        problems.append("not healthy before the fault")
    closed = [t1 for t0, t1, v, _ in samples if v == "closed" and t0 < window.undo_at]
    closed = [t for t in closed if t >= window.fault_at]
    to_close = min(closed) - window.fault_at if closed else None
    bound = probe.fail_closed_bound_s
    if to_close is None:
        problems.append("did not fail closed while the store was faulted")
    elif to_close > bound:
        problems.append(f"failed closed after {to_close:.3f} s, over its bound of {bound:g} s")
    served = [
        t0 for t0, t1, v, _ in samples if v == "healthy" and window.fault_at + bound < t0
        and t1 < window.undo_at
    ]  # fmt: skip
    if served:
        problems.append(f"served {len(served)} times while the store was faulted")
    healthy = [t1 for t0, t1, v, _ in samples if v == "healthy" and t0 >= window.undone_at]
    to_recover = min(healthy) - window.undone_at if healthy else None
    if to_recover is None:
        problems.append(f"did not recover within {probe.recover_bound_s:g} s")
    elif to_recover > probe.recover_bound_s:
        problems.append(f"recovered after {to_recover:.3f} s, over {probe.recover_bound_s:g} s")
    bad = dict.fromkeys(d for _, _, v, d in samples if v == "other" and d.startswith("bad:"))
    problems.extend(list(bad)[:3])
    return to_close, to_recover, problems


class _Setup:
    """The per-drill names and the stores' preparation; :meth:`close` drops what it made."""

    def __init__(self, pool: ContainerPool, scenario: Scenario) -> None:
        from sqlalchemy import text

        from pytest_reliability import tables
        from pytest_reliability.db import make_engine

        self.id = uuid.uuid4().hex[:10]
        self.tenant = f"drill-{self.id}"
        self.probe_tenant = f"drill-probe-{self.id}"
        self.table = f"drill_effects_{self.id}"
        self.namespace = f"drill-{self.id}"
        self.pg = pool.shared("postgres")
        self.target = pool.shared(scenario.store)
        # Pinged: the drill kills the server under this pool.
        self.engine = make_engine(
            self.pg.url, connect_args={"connect_timeout": 5}, pool_pre_ping=True
        )
        tables.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {self.table} (id BIGSERIAL PRIMARY KEY, "
                              "key TEXT NOT NULL, worker INT NOT NULL)"))  # fmt: skip
        self.key_prefix = ""
        self.switches_url = self.pg.url
        self.idempotency_url = ""
        if scenario.store == "redis":
            self.key_prefix = f"{self.namespace}:"
            self.switches_url = self.target.url
            probes_.seed_switches(self.switches_url, self.namespace, self.key_prefix)
            if "idempotency" in scenario.drilled():
                # Idempotency on the Redis under drill; the effects in the completion's MULTI.
                self.idempotency_url = self.target.url
                open_idempotency(self.config(scenario), initialize=True).close()

    def config(self, scenario: Scenario) -> TrafficConfig:
        """The traffic's settings (the probes share the stores)."""
        redis = bool(self.idempotency_url)
        return TrafficConfig(
            database_url=self.pg.url,
            switches_url=self.switches_url,
            tenant=self.tenant,
            effects_table=self.table,
            namespace=self.namespace,
            key_prefix=self.key_prefix,
            mode=scenario.mode,
            store_timeout=1.0,
            staleness=probes_.STALENESS,
            poll_interval=probes_.POLL_INTERVAL,
            idempotency_url=self.idempotency_url,
            idempotency_prefix=f"{self.namespace}:" if redis else "",
            effects_key=f"{self.namespace}:drill-effects" if redis else "",
        )

    def traffic(self, scenario: Scenario, directory: Path) -> Traffic:
        return Traffic(self.config(scenario), directory, scenario.workers)

    def probes(self, scenario: Scenario) -> list[Probe]:
        made: list[Probe] = []
        try:
            switches = None
            for module in scenario.drilled():
                if module == "kill_switch":
                    ks = probes_.KillSwitchProbe(self.switches_url, self.namespace, self.key_prefix)
                    switches = ks.switches
                    made.append(ks)
                elif module == "readiness":
                    if switches is None:
                        raise ValueError("readiness is drilled with kill_switch (its gate)")
                    made.append(probes_.ReadinessProbe(self.pg.url, switches))
                elif module == "health":
                    readiness = next(p for p in made if isinstance(p, probes_.ReadinessProbe))
                    made.append(probes_.HealthProbe(readiness))
                elif module == "idempotency":
                    config = self.config(scenario)
                    made.append(probes_.IdempotencyProbe(config, self.probe_tenant))
                elif module == "audit":
                    made.append(probes_.AuditProbe(self.pg.url, [self.probe_tenant, self.tenant]))
                elif module == "backup":
                    made.append(probes_.BackupProbe(self.pg.url))
                elif module == "abuse":
                    made.append(probes_.AbuseProbe(self.target.url, self.namespace))
                else:
                    raise ValueError(f"no probe for module {module!r}")
        except BaseException:
            for probe in made:
                probe.close()
            raise
        return made

    def durable_counts(self) -> tuple[dict[str, int], dict[str, int] | None]:
        from sqlalchemy import text

        if self.idempotency_url:
            import redis

            client = redis.Redis.from_url(self.idempotency_url, socket_timeout=10)
            try:
                raw = client.hgetall(f"{self.namespace}:drill-effects")
            finally:
                client.close()
            return {_text(k): int(v) for k, v in raw.items()}, None
        with self.engine.connect() as conn:
            effects = conn.execute(text(f"SELECT key, count(*) FROM {self.table} GROUP BY key"))
            events = conn.execute(
                text(
                    "SELECT target, count(*) FROM audit_events WHERE tenant_id = :t "
                    "AND action = :a GROUP BY target"
                ),
                {"t": self.tenant, "a": AUDIT_ACTION},
            )
            return {k: int(n) for k, n in effects}, {k: int(n) for k, n in events}

    def close(self) -> None:
        from sqlalchemy import text

        with contextlib.suppress(Exception), self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
        self.engine.dispose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextlib.contextmanager
def _closing(items: Sequence[Probe]) -> Iterator[None]:
    try:
        yield
    finally:
        for item in items:
            with contextlib.suppress(Exception):
                item.close()


def run_scenario(
    pool: ContainerPool, scenario: Scenario, *, workdir: Path | None = None
) -> list[DrillResult]:
    """Run one drill; return (and record) one result per module. The fault is always undone."""
    if scenario.fault not in FAULTS:
        raise ValueError(f"unknown fault {scenario.fault!r}; expected one of {sorted(FAULTS)}")
    apply, undo = FAULTS[scenario.fault]
    setup = _Setup(pool, scenario)
    container = setup.target
    scratch = None if workdir is not None else Path(tempfile.mkdtemp(prefix="drill-"))
    directory = (workdir or scratch or Path()) / setup.id
    traffic = setup.traffic(scenario, directory)
    samplers: list[_Sampler] = []
    try:
        probes = setup.probes(scenario)
        samplers = [_Sampler(p) for p in probes]
        extra: dict[str, list[str]] = {p.module: [] for p in probes}
        with _closing(probes):
            traffic.start()
            for sampler in samplers:
                sampler.start()
            # Every module serving before the fault (the first PostgreSQL call can be slow).
            _wait(lambda: all(s.seen("healthy", 0) for s in samplers), 30)
            time.sleep(0.2)
            getattr(container, apply)()
            fault_at = undo_at = time.time()
            try:
                longest = max(p.fail_closed_bound_s for p in probes)
                hold = max(MIN_HOLD_S, scenario.hold_s)
                _wait(lambda: time.time() - fault_at >= hold
                      and all(s.seen("closed", fault_at) for s in samplers),
                      max(longest * 1.5 + 1, hold))  # fmt: skip
            finally:
                undo_at = time.time()
                if undo == "start":
                    container.start(wait=False)  # the recovery is what the drill times
                else:
                    getattr(container, undo)()
                undone_at = time.time()
            for probe in probes:
                probe.after_undo(container, scenario.fault)
            recover = max(p.recover_bound_s for p in probes)
            _wait(lambda: all(s.seen("healthy", undone_at) for s in samplers), recover)
            time.sleep(scenario.tail_s)
            for sampler in samplers:
                sampler.finish()
            traffic.stop()
            for probe in probes:
                extra[probe.module] += probe.after_recovery()
            window = Window(fault_at, undo_at, undone_at)
            verdict = _history(setup, traffic, window, scenario)
            print(
                f"drill {scenario.name}: {verdict.requests} requests on {verdict.keys} keys, "
                f"{verdict.acknowledged} acknowledged, {verdict.refused} refused, "
                f"other failures {verdict.errors or 'none'}",
                file=sys.stderr,
            )
            return _results(scenario, probes, samplers, window, verdict, extra)
    finally:
        for sampler in samplers:
            sampler.finish()
        traffic.stop()
        with contextlib.suppress(Exception):
            container.restore()
        setup.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _history(setup: _Setup, traffic: Traffic, window: Window, scenario: Scenario) -> HistoryVerdict:
    entries = [e for log in traffic.logs() for e in read_log(log)]
    effects, events = setup.durable_counts()
    # The workers' switches read engaged within their staleness, poll and store timeout.
    switch_bound = probes_.STALENESS + probes_.POLL_INTERVAL + 1.0
    # Only a fault of the idempotency store stops claims.
    grace = CLAIM_GRACE_S if scenario.store == "postgres" or setup.idempotency_url else None
    return check_history(
        entries, effects, events, window, claim_grace_s=grace, switch_bound_s=switch_bound
    )


def _results(
    scenario: Scenario,
    probes: list[Probe],
    samplers: list[_Sampler],
    window: Window,
    verdict: HistoryVerdict,
    extra: dict[str, list[str]],
) -> list[DrillResult]:
    modules = [p.module for p in probes]
    history = dict(verdict.violations)
    # A module the drill did not probe still has its history judged: it goes with the first.
    orphans = [f"{m}: {v}" for m, vs in history.items() if m not in modules for v in vs]
    results = []
    for index, (probe, sampler) in enumerate(zip(probes, samplers, strict=True)):
        to_close, to_recover, problems = _judge(probe, sampler.samples, window)
        problems += extra.get(probe.module, [])
        problems += history.get(probe.module, [])
        if index == 0:
            problems += orphans
        checked = verdict.requests if probe.module in ("idempotency", "audit", "kill_switch") else 0
        own = probe.history(window)
        if own is not None:
            # The probe's own calls (abuse decisions) are its history, judged the same way.
            problems += own.violations.get(probe.module, [])
            checked += own.requests
        result = DrillResult(
            module=probe.module,
            store=scenario.store,
            fault=scenario.fault,
            time_to_fail_closed_s=to_close,
            time_to_recover_s=to_recover,
            fail_closed_bound_s=probe.fail_closed_bound_s,
            recover_bound_s=probe.recover_bound_s,
            histories_checked=checked,
            violations=tuple(problems),
            expected="failed" if probe.module in scenario.expected_failed else "passed",
        )
        record_drill(result)
        results.append(result)
    if verdict.requests == 0:
        raise RuntimeError(f"drill {scenario.name}: the traffic made no request")
    return results


def quick_scenarios() -> list[Scenario]:
    """The fast subset the unit suite runs: PostgreSQL paused, every module, two workers."""
    return [Scenario("postgres", "pause", workers=2, tail_s=0.3)]


def full_scenarios() -> list[Scenario]:
    """The gate's drill set: each store under each fault; the backup module on a paused server.

    Idempotency on Redis is drilled paused and cut off, not killed: the drill's Redis keeps
    nothing on disk, so a kill loses acknowledged records by design of the server (the store
    then refuses every call, never running a handler twice, until an operator re-initialises
    it), and the effects kept beside them are lost with them.
    """
    pg = MODULES["postgres"]
    redis_idempotency = (*MODULES["redis"], "idempotency")
    return [
        Scenario("postgres", "pause", (*pg, "backup")),
        Scenario("postgres", "kill"),
        Scenario("postgres", "disconnect"),
        Scenario("redis", "pause", redis_idempotency),
        Scenario("redis", "kill"),
        Scenario("redis", "disconnect", redis_idempotency),
    ]


def run_drills(
    scenarios: Sequence[Scenario], pool: ContainerPool | None = None
) -> list[DrillResult]:
    """Run ``scenarios`` on ``pool`` (a new one, removed at the end, when not given)."""
    own = pool is None
    pool = pool if pool is not None else ContainerPool()
    try:
        return [r for scenario in scenarios for r in run_scenario(pool, scenario)]
    finally:
        if own:
            pool.close()


def _parse_scenario(text: str) -> Scenario:
    store, _, fault = text.partition(":")
    if store not in MODULES or fault not in FAULTS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected STORE:FAULT, STORE in {sorted(MODULES)}, FAULT in {sorted(FAULTS)}"
        )
    return Scenario(store, fault)


def check_report(path: Path) -> list[str]:
    """Print a report's ``chaos_drills`` one line a drill; return why the gate fails (or []).

    A drill that failed as planted (``expected: "failed"``) fails nothing; a planted drill that
    passed missed its bug, and fails the gate.
    """
    section = json.loads(path.read_text(encoding="utf-8")).get("chaos_drills")
    if not section or not section["drills"]:
        return ["the report has no chaos_drills section: no drill ran"]
    late = 0
    for d in section["drills"]:
        close, recover = d["time_to_fail_closed_s"], d["time_to_recover_s"]
        outcome = drill_outcome(d)
        print(
            f"  {outcome.upper():6} {d['module']:12} {d['store']:8} {d['fault']:10} "
            f"fail closed {'-' if close is None else f'{close:.3f}'} s "
            f"(bound {d['fail_closed_bound_s']:g}), recovered "
            f"{'-' if recover is None else f'{recover:.3f}'} s "
            f"(bound {d['recover_bound_s']:g}), {d['histories_checked']} histories"
        )
        for violation in d["violations"]:
            print(f"         violation: {violation}")
        if outcome == PLANTED:
            continue  # its times are the planted bug's too
        if (
            close is None
            or close > d["fail_closed_bound_s"]
            or recover is None
            or recover > d["recover_bound_s"]
        ):
            late += 1
    # Counted from the items: a merged section, or an older one, is judged the same way.
    failed = drill_counts(section["drills"]).failed
    violations = unplanted_violations(section["drills"])
    if failed or violations or late:
        return [f"{failed} drills failed, {violations} violations, {late} over a time bound"]
    return []


def main(argv: list[str]) -> int:
    """Run drills; print the ``chaos_drills`` section; exit 1 on any violation or no Docker.

    ``--check-docker`` only asks whether a Docker Engine answers; ``--check-report PATH`` judges
    the ``chaos_drills`` section of a report a gate wrote.
    """
    parser = argparse.ArgumentParser(prog="python -m harness.chaos_drills")
    parser.add_argument("--quick", action="store_true", help="the unit suite's fast subset")
    parser.add_argument("--scenario", type=_parse_scenario, action="append", default=[])
    parser.add_argument("--mode", choices=["correct", "ack-early"], default="correct")
    parser.add_argument(
        "--expect-failed",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module whose drill must fail (it must catch the planted bug of --mode)",
    )
    parser.add_argument("--check-docker", action="store_true")
    parser.add_argument("--check-report", type=Path)
    args = parser.parse_args(argv)
    if args.check_docker:
        try:
            docker_client().close()
        except DockerUnavailable as exc:
            print(f"chaos_drills: {exc.reason}", file=sys.stderr)
            return 1
        return 0
    if args.check_report is not None:
        problems = check_report(args.check_report)
        for problem in problems:
            print(f"chaos_drills: {problem}", file=sys.stderr)
        return 1 if problems else 0
    scenarios = args.scenario or (quick_scenarios() if args.quick else full_scenarios())
    scenarios = [
        replace(s, mode=args.mode, expected_failed=tuple(args.expect_failed)) for s in scenarios
    ]
    try:
        results = run_drills(scenarios)
    except DockerUnavailable as exc:
        print(f"chaos_drills: {exc.reason}", file=sys.stderr)
        return 1
    section = chaos_drills_section(results)
    print(json.dumps(section, indent=2))
    return 0 if section["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
