"""A throwaway PostgreSQL cluster: ``initdb`` in a temporary directory on a free port.

The drill restores only into clusters made here; :func:`started_here` is how it tells them from
every other server. ``initdb`` and ``postgres`` refuse to run as root, so as root the programs
run as the unprivileged ``postgres`` user (``runuser``), which then owns the temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import final

from pytest_reliability.errors import RestoreDrillError
from pytest_reliability.ops.backup_engine._pg_tools import find_tool

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
PG_USER = "postgres"

_lock = threading.Lock()
_running: set[tuple[str, int]] = set()


def started_here(host: str, port: int) -> bool:
    """Return whether a throwaway cluster of this process listens on ``host:port`` now."""
    with _lock:
        return (host, port) in _running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_USER, "--", *cmd]


@final
class ThrowawayCluster:
    """A private PostgreSQL cluster for one drill; a context manager that always destroys it.

    ``server_major`` picks the binaries (the backup's server version, or the nearest newer).
    """

    __slots__ = ("_bin", "_data", "_root", "host", "port", "version")

    def __init__(self, *, server_major: int | None = None, pg_bin_dir: Path | None = None) -> None:
        initdb = find_tool("initdb", server_major=server_major, bin_dir=pg_bin_dir)
        self._bin = initdb.path.parent
        self.version = initdb.version
        self.host = "127.0.0.1"
        self.port = 0
        self._root: Path | None = None
        self._data: Path | None = None

    @property
    def bin_dir(self) -> Path:
        """The directory of the PostgreSQL programs this cluster runs."""
        return self._bin

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of ``database`` in this cluster."""
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{database}"

    def _run(self, cmd: list[str], timeout: float) -> None:
        try:
            proc = subprocess.run(
                _as_pg_user(cmd), cwd="/", capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise RestoreDrillError(f"{Path(cmd[0]).name} timed out after {timeout}s") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RestoreDrillError(f"{Path(cmd[0]).name} failed: {last}")

    def start(self) -> ThrowawayCluster:
        """Create and start the cluster (bounded: :data:`START_TIMEOUT_S`)."""
        self._root = Path(tempfile.mkdtemp(prefix="reliability-drill-"))
        try:
            if os.geteuid() == 0:
                shutil.chown(self._root, PG_USER)
            self._data = self._root / "data"
            self._run(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self._data),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                START_TIMEOUT_S,
            )
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses={self.host} -k {self._root} "
                "-c fsync=off -c full_page_writes=off"
            )
            self._run(
                [
                    str(self._bin / "pg_ctl"),
                    "-D",
                    str(self._data),
                    "-l",
                    str(self._root / "server.log"),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "start",
                    "-o",
                    options,
                ],
                START_TIMEOUT_S + 10,
            )
        except BaseException:
            self.stop()
            raise
        with _lock:
            _running.add((self.host, self.port))
        return self

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call twice."""
        with _lock:
            _running.discard((self.host, self.port))
        if self._data is not None and (self._data / "postmaster.pid").exists():
            try:
                self._run(
                    [
                        str(self._bin / "pg_ctl"),
                        "-D",
                        str(self._data),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        str(STOP_TIMEOUT_S),
                        "stop",
                    ],
                    STOP_TIMEOUT_S + 10,
                )
            except RestoreDrillError:
                self._kill()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._data = None

    def _kill(self) -> None:
        assert self._data is not None
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self._data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
