"""Infrastructure chaos: faults on real servers, below the code under test.

Two tools, for two situations:

* :class:`FaultProxy`: a TCP proxy on 127.0.0.1 in front of any server (latency, bandwidth,
  cut, half-open, reset after N bytes). Needs nothing but the server; reaches every driver,
  including those that open their sockets in C (libpq).
* Containers (:class:`ContainerPool`, :class:`Containers`, :class:`ManagedContainer`):
  PostgreSQL and Redis in throwaway Docker containers, built locally from the host's binaries
  (no registry), with pause, stop, kill, restart and network disconnect through the Docker SDK.
  The ``containers`` fixture hands these out and removes them after the test.

Faults are recorded in the report's ``chaos`` facts (:func:`record_chaos_faults`). Outage
drills record what they measured with :func:`record_drill`; the report's ``chaos_drills``
section (:func:`chaos_drills_section`) holds them.
"""

from __future__ import annotations

from pytest_reliability.chaos_infra._containers import (
    MANAGED_LABEL,
    OWNER_LABEL,
    ManagedContainer,
    docker_client,
    start_container,
    sweep_leftovers,
)
from pytest_reliability.chaos_infra._drills import (
    DrillResult,
    chaos_drills_section,
    record_drill,
    recorded_drills,
)
from pytest_reliability.chaos_infra._images import (
    ImageRecipe,
    ensure_image,
    postgres_recipe,
    redis_recipe,
)
from pytest_reliability.chaos_infra._pool import ContainerPool, Containers
from pytest_reliability.chaos_infra._probes import postgres_ready, redis_ready, wait_ready
from pytest_reliability.chaos_infra._proxy import FaultProxy
from pytest_reliability.chaos_infra._record import open_recorded_proxy, record_chaos_faults

__all__ = [
    "MANAGED_LABEL",
    "OWNER_LABEL",
    "ContainerPool",
    "Containers",
    "DrillResult",
    "FaultProxy",
    "ImageRecipe",
    "ManagedContainer",
    "chaos_drills_section",
    "docker_client",
    "ensure_image",
    "open_recorded_proxy",
    "postgres_ready",
    "postgres_recipe",
    "record_chaos_faults",
    "record_drill",
    "recorded_drills",
    "redis_ready",
    "redis_recipe",
    "start_container",
    "sweep_leftovers",
    "wait_ready",
]
