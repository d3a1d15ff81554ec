"""Steady traffic for an outage drill: worker processes charging through the real modules.

Each worker (``python -m harness.drills.traffic ...``, a real subprocess) loops until told to
stop: it checks the ``BILLING`` kill switch, then runs a charge through the idempotency engine
whose handler inserts the effect row and appends the audit event in the same transaction as the
completion. Keys are new, retried (a key this worker used before) or shared (every worker sends
the same key in the same 200 ms slot: concurrent deliveries). Every request, every handler
start and every acknowledgement goes to the worker's JSON-lines log, written before the next
step, so the history check sees what the caller saw even when the store died mid-request.

``--mode ack-early`` plants a bug: the handler acknowledges before its effect is durable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

OPERATION = "drill.charge"
AUDIT_ACTION = "drill.charge"
SWITCH = "BILLING"
MODES = ("correct", "ack-early")
_FAIL_CLOSED = (
    "IdempotencyUnavailable",
    "StoreUnavailable",
    "StoreDataLost",
    "KillSwitchEngaged",
    "IdempotencyInProgress",
)
"""Exception names a request may end with while the store is faulted: refused, nothing done."""


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    """Where the workers send traffic, and how."""

    database_url: str
    """PostgreSQL: idempotency records, effects and audit events."""
    switches_url: str
    """The kill switches' store (the PostgreSQL or Redis under drill)."""
    tenant: str
    effects_table: str
    namespace: str
    key_prefix: str = ""
    mode: str = "correct"
    store_timeout: float = 1.0
    staleness: float = 1.0
    poll_interval: float = 0.25
    max_seconds: float = 120.0
    idempotency_url: str = ""
    """The idempotency store when not ``database_url``: a Redis URL, whose effects then go into
    the hash ``effects_key`` in the completion's ``MULTI`` (no audit event: it cannot join)."""
    idempotency_prefix: str = ""
    effects_key: str = ""
    ack_delay: float = 0.3
    """Seconds the planted bug sleeps between its early acknowledgement and the effect."""


def _args(config: TrafficConfig, worker: int, log: Path, stop: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.drills.traffic",
        "--config",
        json.dumps({k: getattr(config, k) for k in TrafficConfig.__dataclass_fields__}),
        "--worker",
        str(worker),
        "--log",
        str(log),
        "--stop",
        str(stop),
    ]


@dataclass(slots=True)
class Traffic:
    """Worker processes started by :meth:`start`, stopped (always) by :meth:`stop`."""

    config: TrafficConfig
    directory: Path
    workers: int = 3
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def stop_file(self) -> Path:
        """Created to tell the workers to finish their request and exit."""
        return self.directory / "stop"

    def logs(self) -> list[Path]:
        """The workers' JSON-lines logs."""
        return [self.directory / f"worker-{i}.jsonl" for i in range(self.workers)]

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the workers and wait until each acknowledged a request (or raise, none left)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stop_file.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), *sys.path]))}
        try:
            for i, log in enumerate(self.logs()):
                args = _args(self.config, i, log, self.stop_file)
                self.procs.append(subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL))
            deadline = time.monotonic() + ready_timeout
            for log, proc in zip(self.logs(), self.procs, strict=True):
                while not _acknowledged(log):
                    if proc.poll() is not None:
                        raise RuntimeError(f"traffic worker exited with {proc.returncode}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"traffic worker acknowledged nothing in {ready_timeout} s"
                        )
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """Tell the workers to stop; kill any still running after ``timeout``. Exit codes."""
        self.stop_file.touch()
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            codes.append(proc.returncode)
        self.procs.clear()
        return codes


def _acknowledged(log: Path) -> bool:
    try:
        with log.open(encoding="utf-8") as fh:
            return any('"ev": "done"' in line and '"outcome": "ack"' in line for line in fh)
    except FileNotFoundError:
        return False


def read_log(path: Path) -> list[dict[str, Any]]:
    """Return a worker log's entries; a line torn by a killed worker is dropped."""
    entries = []
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    return entries


# -- the worker process -------------------------------------------------------------------------


class _Log:
    def __init__(self, fh: IO[str], worker: int) -> None:
        self._fh = fh
        self._worker = worker

    def __call__(self, **entry: Any) -> None:
        entry = {"w": self._worker, "t": time.time(), **entry}
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()


def _next_key(rng: random.Random, worker: int, n: int, used: list[str]) -> str:
    roll = rng.random()
    if roll < 0.15 and used:
        return rng.choice(used[-20:])  # a retry of one of ours
    if roll < 0.35:
        return f"s-{int(time.time() * 5)}"  # every worker in this 200 ms slot: concurrent
    return f"w{worker}-{n}"


def _handler(
    config: TrafficConfig, audit: Any, log: _Log, key: str, worker: int
) -> Callable[[Any], Any]:
    from sqlalchemy import text

    insert = text(f"INSERT INTO {config.effects_table} (key, worker) VALUES (:key, :worker)")
    response = {"charged": key}

    def handle(attempt: Any) -> Any:
        log(ev="handler", key=key)
        if config.mode == "ack-early":
            # The planted bug: the caller hears "done" before the effect is durable.
            log(ev="early_ack", key=key, response=response)
            time.sleep(config.ack_delay)
        if config.effects_key:
            attempt.defer(lambda pipe: pipe.hincrby(config.effects_key, key, 1))
            return response
        conn = attempt.connection
        conn.execute(insert, {"key": key, "worker": worker})
        audit.append(
            AUDIT_ACTION, actor=f"worker-{worker}", target=key, outcome="ok", connection=conn
        )
        return response

    return handle


def open_idempotency(config: TrafficConfig, *, initialize: bool = False) -> Any:
    """The idempotency engine on the drill's store, with the drill's store timeout."""
    from pytest_reliability.idempotency import IdempotencyEngine

    url = config.idempotency_url or config.database_url
    if not url.startswith("redis"):
        return IdempotencyEngine.from_url(url, timeout=config.store_timeout, ensure_schema=False)
    with warnings.catch_warnings():
        # The drill's Redis keeps nothing on disk, by design of its image.
        warnings.filterwarnings("ignore", "Redis idempotency store", RuntimeWarning)
        return IdempotencyEngine.from_url(
            url,
            prefix=config.idempotency_prefix,
            durability="warn",
            initialize=initialize,
            socket_timeout=config.store_timeout,
            socket_connect_timeout=config.store_timeout,
        )


def run_worker(config: TrafficConfig, worker: int, log_path: Path, stop: Path) -> int:
    """The worker loop; returns the exit code."""
    from pytest_reliability.audit import AuditLog
    from pytest_reliability.db import make_engine
    from pytest_reliability.ops.kill_switch import KillSwitches
    from pytest_reliability.tenancy import tenant_scope

    engine = make_engine(config.database_url)
    audit = AuditLog(engine, timeout=config.store_timeout)
    idem = open_idempotency(config)
    # The drill's Redis keeps nothing on disk, by design of its image: that risk is drilled.
    durability = {"durability": "warn"} if config.switches_url.startswith("redis") else {}
    warnings.filterwarnings("ignore", "Redis (kill switch|idempotency) store", RuntimeWarning)
    # Warnings the modules log about a store failing are the drill's point: the log says it.
    logging.getLogger("pytest_reliability").setLevel(logging.ERROR)
    switches = KillSwitches.from_url(
        config.switches_url,
        **durability,
        namespace=config.namespace,
        key_prefix=config.key_prefix,
        store_timeout=config.store_timeout / 2,
        poll_interval=config.poll_interval,
        staleness=config.staleness,
        env={},
    )
    rng = random.Random(worker * 7919 + 17)
    used: list[str] = []
    until = time.monotonic() + config.max_seconds
    with log_path.open("a", encoding="utf-8") as fh, tenant_scope(config.tenant):
        log = _Log(fh, worker)
        n = 0
        while not stop.exists() and time.monotonic() < until:
            n += 1
            key = _next_key(rng, worker, n, used)
            used.append(key)
            started = time.time()
            switch = "engaged" if switches.is_engaged(SWITCH) else "open"
            try:
                switches.check(SWITCH)
                outcome = idem.run(
                    operation=OPERATION,
                    key=key,
                    payload={"key": key},
                    handler=_handler(config, audit, log, key, worker),
                )
            except Exception as exc:  # every outcome is logged; the history check judges it
                name = type(exc).__name__
                kind = "refused" if name in _FAIL_CLOSED else "error"
                log(ev="done", key=key, start=started, switch=switch, outcome=kind, error=name,
                    message=str(exc)[:200])  # fmt: skip
                if kind == "refused":
                    time.sleep(0.02)  # a refused client backs off a little, as a real one would
                continue
            log(ev="done", key=key, start=started, switch=switch, outcome="ack",
                response=outcome.response, replayed=outcome.replayed)  # fmt: skip
    switches.close()
    idem.close()
    engine.dispose()
    return 0


def main(argv: list[str]) -> int:
    """Run one traffic worker (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m harness.drills.traffic")
    parser.add_argument("--config", required=True, help="TrafficConfig as JSON")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True)
    args = parser.parse_args(argv)
    config = TrafficConfig(**json.loads(args.config))
    if config.mode not in MODES:
        parser.error(f"--mode must be one of {MODES}")
    return run_worker(config, args.worker, args.log, args.stop)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
