"""Fixtures for the idempotency tests: every store behind one parametrised fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, Pool, QueuePool

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock

# The fixture under test, also when the plugin is not loaded (``-p no:reliability``).
from pytest_reliability.fixtures._idempotency import idempotency_check  # noqa: F401
from pytest_reliability.idempotency import IdempotencyConfig, IdempotencyEngine, SqlStore
from pytest_reliability.tenancy import tenant_scope

# "KIND/POOL": the SQL store on an engine from plain ``sqlalchemy.create_engine`` (not
# ``make_engine``) with that pool class, as a service that already has an engine would pass it.
PLAIN_POOLS: dict[str, type[Pool]] = {
    "queuepool": QueuePool,
    "nullpool": NullPool,
}
STORES = [
    "memory",
    "sqlite",
    "postgres",
    "redis",
    "sqlite/queuepool",
    "sqlite/nullpool",
    "postgres/queuepool",
    "postgres/nullpool",
]


@pytest.fixture(params=STORES)
def store_variant(request: pytest.FixtureRequest) -> str:
    """The store under test, with the engine kind for SQL stores on a plain engine."""
    if request.param.startswith("postgres"):
        request.applymarker(pytest.mark.postgres)
    if request.param == "redis":
        request.applymarker(pytest.mark.redis)
    return str(request.param)


@pytest.fixture
def store_kind(store_variant: str) -> str:
    """The name of the store under test (``sqlite`` also for SQLite on a plain engine)."""
    return store_variant.partition("/")[0]


@pytest.fixture
def store_spec(store_kind: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(URL, store options) of a fresh, isolated store of ``store_kind``."""
    if store_kind == "memory":
        return "memory://", {}
    if store_kind == "sqlite":
        return str(request.getfixturevalue("sqlite_url")), {}
    if store_kind == "postgres":
        return str(request.getfixturevalue("pg_url")), {}
    prefix = str(request.getfixturevalue("redis_prefix"))
    # The shared test Redis runs without persistence: accepted here explicitly.
    options = {"prefix": prefix, "durability": "warn", "initialize": True}
    return str(request.getfixturevalue("redis_url")), options


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock: leases and retention move only when the test says so."""
    return ManualClock()


@pytest.fixture
def audit() -> InMemoryAuditLog:
    """An in-memory audit log the engine writes to."""
    return InMemoryAuditLog()


@pytest.fixture
def tenant() -> Iterator[str]:
    """Run the test inside tenant ``acme``."""
    with tenant_scope("acme"):
        yield "acme"


EngineFactory = Callable[..., IdempotencyEngine]


@pytest.fixture
def make_idem(
    store_spec: tuple[str, dict[str, Any]],
    store_variant: str,
    clock: ManualClock,
    audit: InMemoryAuditLog,
) -> Iterator[EngineFactory]:
    """Build engines on the store under test (closed afterwards); keywords go to the config."""
    made: list[IdempotencyEngine] = []
    shared: dict[str, Any] = {}
    url, options = store_spec
    plain: Engine | None = None
    if "/" in store_variant:
        plain = sa.create_engine(url, poolclass=PLAIN_POOLS[store_variant.partition("/")[2]])

    def make(*, use_clock: Any = clock, **config: Any) -> IdempotencyEngine:
        if plain is not None:
            engine = IdempotencyEngine(
                SqlStore(plain), audit=audit, clock=use_clock, config=IdempotencyConfig(**config)
            )
        elif url == "memory://" and made:
            # One process-local store shared by every engine of the test, like a shared database.
            engine = IdempotencyEngine(
                shared["store"], audit=audit, clock=use_clock, config=IdempotencyConfig(**config)
            )
        else:
            engine = IdempotencyEngine.from_url(
                url, audit=audit, clock=use_clock, config=IdempotencyConfig(**config), **options
            )
            shared.setdefault("store", engine.store)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
    if plain is not None:
        plain.dispose()
