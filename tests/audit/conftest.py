"""The audit tests' engines: every kind a service may hand the log, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool, SingletonThreadPool, StaticPool

from pytest_reliability.db import make_engine

# (backend, how the engine is built). "make" is make_engine; the others are plain
# sqlalchemy.create_engine with that pool class and nothing else of ours.
ENGINE_KINDS = [
    ("sqlite", "make"),
    ("sqlite", "queue"),
    ("sqlite", "null"),
    ("sqlite", "static"),
    ("sqlite", "singleton"),
    ("postgres", "make"),
    ("postgres", "queue"),
    ("postgres", "null"),
    ("postgres", "static"),
]
_POOLS: dict[str, type[Any]] = {
    "queue": QueuePool,
    "null": NullPool,
    "static": StaticPool,
    "singleton": SingletonThreadPool,
}


def plain_url(url: str) -> str:
    """``url`` with the psycopg 3 driver named, as a plain create_engine needs it."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def build_engine(url: str, how: str) -> Engine:
    """An engine on ``url``: make_engine, or plain create_engine with the named pool."""
    if how == "make":
        return make_engine(url)
    kwargs: dict[str, Any] = {"poolclass": _POOLS[how]}
    if url.startswith("sqlite"):
        # Threads share the connection (static) or may use a pooled one another thread opened.
        # A 30 s busy timeout, as make_engine's: the sqlite3 default of 5 s is shorter than a
        # queue of fsyncing writers on a loaded 2-core CI box (the log then fails closed with
        # StoreUnavailable, which is right, but not what these tests are about).
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    return sa.create_engine(plain_url(url), **kwargs)


@pytest.fixture(params=ENGINE_KINDS, ids=[f"{b}-{h}" for b, h in ENGINE_KINDS])
def audit_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Every engine kind the audit log must work with, on a fresh SQLite file or PG schema."""
    backend, how = request.param
    if backend == "postgres":
        request.applymarker(pytest.mark.postgres)
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = str(request.getfixturevalue("sqlite_url"))
    engine = build_engine(url, how)
    yield engine
    engine.dispose()
