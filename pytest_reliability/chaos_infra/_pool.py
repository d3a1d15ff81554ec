"""Containers shared by a module's tests, and the per-test view the ``containers`` fixture gives.

Starting PostgreSQL costs a second or two, so a module's tests share one container of each kind
(:class:`ContainerPool`); each test gets a :class:`Containers` that records its faults and, when
the test ends, restores every shared container to health and removes what the test alone owned.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, final

from pytest_reliability.chaos_infra._containers import (
    ManagedContainer,
    docker_client,
    start_container,
    sweep_leftovers,
)
from pytest_reliability.chaos_infra._proxy import FaultProxy
from pytest_reliability.errors import DockerUnavailable

POOL_LABEL = "pytest-reliability.pool"
_swept = threading.Event()


def sweep_once(client: Any) -> int:
    """Remove what dead runs left behind, once per process; return how many objects went."""
    if _swept.is_set():
        return 0
    _swept.set()
    return sweep_leftovers(client)


@final
class ContainerPool:
    """Containers started on first use and shared until :meth:`close` removes them.

    ``ContainerPool()`` connects to the Docker Engine (raising :class:`DockerUnavailable` with
    the reason when it cannot) and sweeps what dead runs left behind.
    """

    __slots__ = ("_lock", "_shared", "client", "label")

    def __init__(self, client: Any | None = None) -> None:
        self.client = client if client is not None else docker_client()
        sweep_once(self.client)
        self.label = f"{POOL_LABEL}={uuid.uuid4().hex}"
        """Carried by everything the pool starts, so :meth:`close` finds even a half-started one."""
        self._shared: dict[str, ManagedContainer] = {}
        self._lock = threading.Lock()

    def shared(self, kind: str) -> ManagedContainer:
        """Return the pool's ``kind`` container, starting it on first use."""
        with self._lock:
            if kind not in self._shared:
                self._shared[kind] = self.start(kind)
            return self._shared[kind]

    def start(self, kind: str) -> ManagedContainer:
        """Start a ``kind`` container labelled as this pool's (removed by :meth:`close`)."""
        key, _, value = self.label.partition("=")
        return start_container(self.client, kind, labels={key: value})

    def forget(self, container: ManagedContainer) -> None:
        """Drop ``container`` from the pool (it was removed); the next use starts another."""
        with self._lock:
            self._shared = {k: c for k, c in self._shared.items() if c is not container}

    def close(self) -> None:
        """Remove every container the pool started, and any leftover of this process."""
        with self._lock:
            shared, self._shared = list(self._shared.values()), {}
        for container in shared:
            container.remove()
        with contextlib.suppress(Exception):
            sweep_leftovers(self.client, label=self.label)


@final
class Containers:
    """A test's handle on containers: ``postgres()``, ``redis()``, and proxies in front of them.

    Faults go through the returned :class:`ManagedContainer` (``pause``, ``stop``, ``kill``,
    ``restart``, ``disconnect``...). :meth:`finish` undoes them all and returns their records.
    """

    __slots__ = ("_on_unavailable", "_owned", "_pool", "_proxies", "_used")

    def __init__(
        self,
        pool: ContainerPool,
        on_unavailable: Callable[[DockerUnavailable], NoReturn] | None = None,
    ) -> None:
        self._pool = pool
        self._on_unavailable = on_unavailable
        """Called instead of raising when a container cannot start (the fixture skips)."""
        self._used: list[ManagedContainer] = []
        self._owned: list[ManagedContainer] = []
        self._proxies: list[FaultProxy] = []

    def _get(self, kind: str, fresh: bool) -> ManagedContainer:
        try:
            if fresh:
                container = self._pool.start(kind)
                self._owned.append(container)
            else:
                container = self._pool.shared(kind)
        except DockerUnavailable as exc:
            if self._on_unavailable is None:
                raise
            self._on_unavailable(exc)
        self._used.append(container)
        return container

    def postgres(self, *, fresh: bool = False) -> ManagedContainer:
        """A PostgreSQL container (trust auth, user and database ``postgres``).

        Shared with the module's other tests unless ``fresh``; data written by an earlier test
        may be there, so use your own schema or table names.
        """
        return self._get("postgres", fresh)

    def redis(self, *, fresh: bool = False) -> ManagedContainer:
        """A Redis container (no persistence); shared with the module's tests unless ``fresh``."""
        return self._get("redis", fresh)

    def proxy(self, container: ManagedContainer) -> FaultProxy:
        """A :class:`FaultProxy` in front of ``container``, closed when the test ends."""
        proxy = FaultProxy(container.host, container.port)
        self._proxies.append(proxy)
        return proxy

    def faults(self) -> list[dict[str, Any]]:
        """Return the records of every fault this test applied, containers and proxies."""
        records: list[dict[str, Any]] = []
        for container in dict.fromkeys(self._used):
            records += container.faults()
        for proxy in self._proxies:
            records += proxy.faults()
        return records

    def finish(self) -> None:
        """Close proxies, restore shared containers to health, remove the test's own ones.

        Every step runs even when an earlier one fails; the first error is raised at the end
        (a shared container that will not heal is removed, and the next test gets a new one).
        """
        errors: list[Exception] = []
        for proxy in self._proxies:
            proxy.close()
        for container in dict.fromkeys(self._used):
            container.clear_faults()
            if container in self._owned:
                container.remove()
                continue
            try:
                container.restore()
            except Exception as exc:  # collected: the other containers still get restored
                errors.append(exc)
                container.remove()
                self._pool.forget(container)
        self._used.clear()
        self._owned.clear()
        self._proxies.clear()
        if errors:
            raise errors[0]
