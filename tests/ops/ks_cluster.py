"""Drive ``ks_worker.py`` processes: start them, send commands, read their JSON events."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("ks_worker.py")
REPO = Path(__file__).resolve().parents[2]


class Worker:
    """One worker process; events arrive on a queue filled by a reader thread."""

    def __init__(self, role: str, url: str, **options: object) -> None:
        argv = [sys.executable, str(WORKER), role, url]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def expect(self, event: str, timeout: float = 10.0, **match: object) -> dict[str, Any]:
        """Return the next ``event`` whose fields equal ``match``; skip others; fail on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event} {match} within {timeout} s: {self.stderr()}")
            try:
                got = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if got["event"] == event and all(got.get(k) == v for k, v in match.items()):
                return got

    def send(self, line: str) -> None:
        """Write one command line to the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        """The worker's stderr, if it has exited."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()[-2000:]

    def stop(self) -> None:
        """Ask the worker to quit; terminate it if it does not within 5 s."""
        try:
            self.send("quit")
            self.proc.stdin.close()  # type: ignore[union-attr]
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def flip_and_watch(
    flipper: Worker, watcher: Worker, op: str, switch: str, timeout: float = 5.0
) -> tuple[float, float]:
    """Flip ``switch`` in ``flipper``; return seconds until ``watcher`` saw it.

    Two figures: from the start of the flip (the write included) and from its commit.
    """
    flipper.send(f"{op} {switch}")
    done = flipper.expect("done", timeout, op=op, switch=switch)
    want_engaged = op == "engage"
    deadline = time.monotonic() + timeout
    while True:
        seen = watcher.expect("change", max(0.01, deadline - time.monotonic()))
        if (switch in seen["engaged"]) == want_engaged:
            return float(seen["t"] - done["t_start"]), float(seen["t"] - done["t_end"])
