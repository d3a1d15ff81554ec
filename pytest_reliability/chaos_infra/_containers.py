"""Throwaway PostgreSQL and Redis containers, and the faults Docker can put on them.

Every container and network made here carries the labels :data:`MANAGED_LABEL` and
:data:`OWNER_LABEL` (host, pid and the pid's start time), so whatever a killed run left behind is
found and removed by the next one (:func:`sweep_leftovers`), and nothing another live run owns
is touched. Ports are published on 127.0.0.1 only, on a host port chosen once, so the URL stays
valid across stop, restart and network reconnects.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from typing import Any, final

from pytest_reliability.chaos_infra._images import RECIPES, ensure_image
from pytest_reliability.chaos_infra._probes import wait_ready
from pytest_reliability.errors import ConfigurationError, DockerUnavailable

MANAGED_LABEL = "pytest-reliability.managed"
OWNER_LABEL = "pytest-reliability.owner"
_PORTS = {"postgres": 5432, "redis": 6379}
_URLS = {
    "postgres": "postgresql://postgres@127.0.0.1:{port}/postgres",
    "redis": "redis://127.0.0.1:{port}/0",
}
READY_TIMEOUT = 60.0
"""Seconds a container gets to answer after start or restore (cold start on a 2-core box)."""


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # Field 22 (starttime), counted after the parenthesised command name.
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_id() -> str:
    """Return this process's owner label: ``host:pid:starttime`` (a reused pid does not match)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname():
        return True  # another host's run: not ours to judge
    return pid.isdigit() and _start_time(int(pid)) == started


def docker_client(timeout: float = 10.0) -> Any:
    """Return a Docker SDK client whose daemon answers, else raise :class:`DockerUnavailable`."""
    try:
        import docker
    except ImportError as exc:
        raise DockerUnavailable(
            "the docker package is missing: pip install 'pytest-reliability[docker]'"
        ) from exc
    _probe_unix_socket(timeout)
    client = None
    try:
        # A pinned API version: the default "auto" asks the daemon while constructing, and a
        # refused ask leaves the client's socket open with nothing to close it.
        client = docker.from_env(timeout=int(timeout), version=_API_VERSION)
        client.ping()
    except Exception as exc:  # any failure to reach the daemon means "no Docker", said why
        if client is not None:
            client.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DockerUnavailable(f"no Docker Engine answers: {reason}") from exc
    return client


_API_VERSION = "1.41"
"""The Docker Engine API version spoken: Docker 20.10 (Debian 12's docker.io) and newer."""


def _probe_unix_socket(timeout: float) -> None:
    """Raise :class:`DockerUnavailable` when the daemon's Unix socket refuses a connection.

    The SDK leaks its socket when the daemon refuses (urllib3 keeps the failed connection), which
    a run with ``-W error`` turns into a failure of whatever test is running at collection; so
    the usual case, a Unix socket with no daemon behind it, is asked here first, with a socket
    that is always closed.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as exc:
            raise DockerUnavailable(
                f"no Docker Engine answers: {path}: {exc.strerror or exc}"
            ) from exc


def sweep_leftovers(client: Any, *, label: str | None = None) -> int:
    """Remove managed containers and networks whose owner process is dead.

    With ``label`` (``key=value``), remove every managed object carrying it instead, whoever
    owns it. Returns how many objects were removed. A live run's objects are left alone.
    """
    removed = 0
    flt = {"label": [MANAGED_LABEL, label] if label else MANAGED_LABEL}
    # The low-level listing: the high-level one inspects each container, and one removed
    # meanwhile by its own run would make the whole sweep fail.
    for summary in client.api.containers(all=True, filters=flt):
        owner = (summary.get("Labels") or {}).get(OWNER_LABEL, "")
        if label or not _owner_alive(owner):
            with contextlib.suppress(Exception):
                client.api.remove_container(summary["Id"], force=True, v=True)
                removed += 1
    for summary in client.api.networks(filters=flt):
        owner = (summary.get("Labels") or {}).get(OWNER_LABEL, "")
        if label or not _owner_alive(owner):
            with contextlib.suppress(Exception):
                client.api.remove_network(summary["Id"])
                removed += 1
    return removed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@final
class ManagedContainer:
    """One running PostgreSQL or Redis container, its URL, and the faults it can suffer.

    Each fault is recorded (:meth:`faults`) and undone by :meth:`restore`: unpaused,
    reconnected, started again, and waited for until it answers.
    """

    __slots__ = ("_container", "_faults", "_lock", "_network", "_state", "kind", "port")

    def __init__(self, kind: str, container: Any, network: Any, port: int) -> None:
        self.kind = kind
        self.port = port
        """The host port, on 127.0.0.1, that reaches the server."""
        self._container = container
        self._network = network
        self._faults: list[dict[str, Any]] = []
        self._state: set[str] = set()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self._container.name)

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``: clients reach containers through loopback-published ports."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """The server's URL (``postgresql://...`` or ``redis://...``) on 127.0.0.1."""
        return _URLS[self.kind].format(port=self.port)

    def _record(self, kind: str, state: str | None = None, clears: str | None = None) -> None:
        with self._lock:
            self._faults.append(
                {"target": f"container:{self.kind}", "kind": kind, "trigger": "always", "fired": 1}
            )
            if state:
                self._state.add(state)
            if clears:
                self._state.discard(clears)

    def pause(self) -> None:
        """Freeze every process in the container (cgroup freezer): connections hang, not fail."""
        self._container.pause()
        self._record("container_pause", state="paused")

    def unpause(self) -> None:
        """Thaw a paused container."""
        self._container.unpause()
        with self._lock:
            self._state.discard("paused")

    def stop(self, timeout: int = 5) -> None:
        """Stop the server cleanly (PostgreSQL: fast shutdown), then the container."""
        self._container.stop(timeout=timeout)
        self._record("container_stop", state="stopped")

    def kill(self, signal: str = "SIGKILL") -> None:
        """Send ``signal`` (default ``SIGKILL``: a crash, no shutdown) to the server."""
        self._container.kill(signal=signal)
        self._record("container_kill", state="stopped")

    def start(self, wait: bool = True) -> None:
        """Start a stopped or killed container; wait until it answers unless ``wait`` is false."""
        self._container.start()
        with self._lock:
            self._state.discard("stopped")
        if wait:
            self.wait_ready()

    def restart(self, timeout: int = 5, wait: bool = True) -> None:
        """Stop and start the container (the server restarts; connections break)."""
        self._container.restart(timeout=timeout)
        self._record("container_restart")
        if wait:
            self.wait_ready()

    def disconnect(self) -> None:
        """Take the container off its network: its published port refuses until reconnected."""
        self._network.disconnect(self._container, force=True)
        self._record("container_network_disconnect", state="disconnected")

    def reconnect(self) -> None:
        """Put the container back on its network (same published port)."""
        self._network.connect(self._container)
        with self._lock:
            self._state.discard("disconnected")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Wait until the server answers on its URL; return the seconds it took."""
        return wait_ready(self.kind, self.host, self.port, timeout)

    def restore(self) -> None:
        """Undo every fault still in force, then wait until the server answers."""
        with self._lock:
            state = set(self._state)
        self._container.reload()
        status = self._container.status
        if "paused" in state or status == "paused":
            self.unpause()
        if "disconnected" in state:
            self.reconnect()
        if status in {"exited", "created"} or "stopped" in state:
            self.start(wait=False)
        self.wait_ready()

    def faults(self) -> list[dict[str, Any]]:
        """Return every fault applied, as ``{target, kind, trigger, fired}`` records."""
        with self._lock:
            return [dict(f) for f in self._faults]

    def clear_faults(self) -> None:
        """Forget the recorded faults (after they were reported)."""
        with self._lock:
            self._faults.clear()

    def remove(self) -> None:
        """Remove the container and its network (force: a paused or dead one goes too)."""
        with contextlib.suppress(Exception):
            self._container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self._network.remove()


def start_container(
    client: Any, kind: str, *, attempts: int = 3, labels: dict[str, str] | None = None
) -> ManagedContainer:
    """Start a ``kind`` (``postgres`` or ``redis``) container and wait until it answers.

    Raises :class:`ConfigurationError` for an unknown kind, :class:`ImageBuildError` when the
    image cannot be built, and :class:`DockerUnavailable` when no free port could be published
    or the server does not come up. Nothing is left behind when it raises.
    """
    if kind not in RECIPES:
        raise ConfigurationError(
            f"unknown container kind {kind!r}; expected one of {sorted(RECIPES)}"
        )
    import docker.errors

    image = ensure_image(client, RECIPES[kind]())
    labels = {**(labels or {}), MANAGED_LABEL: "1", OWNER_LABEL: owner_id()}
    name = f"reliability-{kind}-{uuid.uuid4().hex[:10]}"
    network = client.networks.create(name, driver="bridge", labels=labels)
    last = ""
    for _ in range(attempts):
        port = _free_port()
        try:
            container = client.containers.run(
                image,
                name=name,
                detach=True,
                labels=labels,
                network=network.name,
                ports={f"{_PORTS[kind]}/tcp": ("127.0.0.1", port)},
                stop_signal="SIGINT" if kind == "postgres" else "SIGTERM",
                shm_size="128m",
            )
        except docker.errors.APIError as exc:
            # Another process took the port between our probe and Docker's bind: try another.
            last = str(exc).splitlines()[0]
            with contextlib.suppress(Exception):
                client.containers.get(name).remove(force=True)
            continue
        managed = ManagedContainer(kind, container, network, port)
        try:
            managed.wait_ready()
        except BaseException:
            managed.remove()
            raise
        return managed
    with contextlib.suppress(Exception):
        network.remove()
    raise DockerUnavailable(f"cannot publish a port for the {kind} container: {last}")
