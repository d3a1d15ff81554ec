"""A kill switch worker process for the cross-process proofs and the propagation benchmark.

Usage: ``python tests/ops/ks_worker.py ROLE URL [--namespace NS] [--key-prefix P] [--poll S]
[--staleness S]`` where ROLE is ``flipper`` or ``watcher``. It writes one JSON object a line:

* both: ``{"event": "ready", "stale": bool}`` once the switches are built;
* flipper: reads ``engage NAME`` / ``release NAME`` / ``quit`` from stdin, answers
  ``{"event": "done", "op": ..., "switch": ..., "t_start": ..., "t_end": ...}``; ``state``
  answers ``{"event": "state", "engaged": [...], "stale": bool}`` (its current view);
* watcher: ``{"event": "change", "engaged": [...], "t": ...}`` whenever its snapshot changes and
  ``{"event": "stale", "stale": bool, "engaged": [...], "t": ...}`` when staleness flips; it
  exits on ``quit`` or at end of stdin.

Times are :func:`time.monotonic`, which on Linux is one clock for every process of the host.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession

_out_lock = threading.Lock()


def emit(**fields: Any) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["flipper", "watcher"])
    parser.add_argument("url")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--key-prefix", default="")
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--staleness", type=float, default=2.0)
    parser.add_argument("--durability", default="require")
    args = parser.parse_args()
    authz = AuthorizationEngine()
    authz.grant("worker", "ops_operator")
    ctx = OpsContext("worker")
    switches = KillSwitches.from_url(
        args.url,
        namespace=args.namespace,
        key_prefix=args.key_prefix,
        durability=args.durability,
        session=OpsSession(authz, InMemoryAuditLog()),
        poll_interval=args.poll,
        staleness=args.staleness,
        env={},
    )
    if args.role == "watcher":
        switches.on_change(
            lambda: emit(event="change", engaged=sorted(switches.engaged()), t=time.monotonic())
        )
    emit(event="ready", stale=switches.stale())
    if args.role == "flipper":
        for line in sys.stdin:
            command = line.split()
            if not command or command[0] == "quit":
                break
            if command[0] == "state":
                # This instance's view, for the convergence proofs.
                emit(event="state", engaged=sorted(switches.engaged()), stale=switches.stale())
                continue
            op, name = command
            start = time.monotonic()
            flip = switches.engage if op == "engage" else switches.release
            flip(name, reason="cross-process proof", actor=ctx)
            emit(event="done", op=op, switch=name, t_start=start, t_end=time.monotonic())
    else:
        done = threading.Event()

        def wait_for_quit() -> None:
            for line in sys.stdin:
                if line.strip() == "quit":
                    break
            done.set()

        threading.Thread(target=wait_for_quit, daemon=True).start()
        was_stale = switches.stale()
        while not done.wait(0.005):
            stale = switches.stale()
            if stale != was_stale:
                emit(
                    event="stale",
                    stale=stale,
                    engaged=sorted(switches.engaged()),
                    t=time.monotonic(),
                )
                was_stale = stale
    switches.close()


if __name__ == "__main__":
    main()
