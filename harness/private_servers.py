"""Private Redis and PostgreSQL servers for tests that restart, freeze or reconfigure them.

The shared servers must never be disturbed; a test that needs to SIGSTOP, restart empty or set
``maxmemory`` starts its own here, on a free port in a temporary directory, and stops it in a
finalizer. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness.services import _free_port, _pg_bin, _port_open, _run_as_pg_user

__all__ = ["PrivatePostgres", "PrivateRedis"]


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _port_open("127.0.0.1", port, timeout=0.2):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no server on port {port} within {timeout} s")
        time.sleep(0.05)


class PrivateRedis:
    """A ``redis-server`` of this test's own. ``args`` are extra server options."""

    def __init__(self, workdir: Path, *args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.workdir = workdir
        self.args = list(args)
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start the server in a fresh data directory (an empty store)."""
        data = self.workdir / f"redis-{time.monotonic_ns()}"
        data.mkdir(parents=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(data)]
        argv += ["--save", "", "--appendonly", "no", *self.args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 10)
        return self

    def restart_empty(self) -> None:
        """Kill the server and start it again with no data: a restart without persistence."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw the server (SIGCONT)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (also when frozen) and wait for it, at most 10 s."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (``initdb`` + ``pg_ctl`` in a temporary directory).

    The directory is made directly under the system temporary directory: when running as root
    the cluster runs as ``postgres``, which cannot enter pytest's private (0700) temp paths.
    """

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        self.workdir.chmod(0o755)
        self.data = self.workdir / "pgdata"
        self.port = _free_port()

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PrivatePostgres:
        """initdb (first time) and start the cluster; bounded by pg_ctl's 60 s wait."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            cmd = [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            _run_as_pg_user([*cmd, "-E", "UTF8", "--no-sync"], self.workdir)
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} -c fsync=off"
        log = self.workdir / "postgres.log"
        start = [_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60"]
        _run_as_pg_user([*start, "start", "-o", opts], self.workdir)
        return self

    def pids(self) -> list[int]:
        """Every process of the cluster: the postmaster and all its children."""
        first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        postmaster = int(first)
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True
        ).stdout
        return [postmaster, *(int(p) for p in out.split())]

    def pause(self) -> list[int]:
        """SIGSTOP every process of the cluster; returns the pids frozen."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return pids

    def resume(self, pids: list[int]) -> None:
        """SIGCONT the processes :meth:`pause` froze."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the cluster (thawing it first) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.resume(self.pids())
            stop = [_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "30"]
            with contextlib.suppress(subprocess.CalledProcessError):
                _run_as_pg_user([*stop, "stop"], self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
