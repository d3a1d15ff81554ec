"""Shared fixtures: real SQLite files, the real PostgreSQL and Redis, each test isolated.

PostgreSQL comes from ``RELIABILITY_TEST_POSTGRES_URL``, else 127.0.0.1:5432, else a private
cluster this session starts (``harness.services``). Each test gets its own schema, named in the URL
(``options=-csearch_path=...``) so subprocesses given the URL land in the same schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import Engine

from harness import services

_started_private_pg = False


def pytest_configure(config: pytest.Config) -> None:
    global _started_private_pg
    # Resolve the servers once on the controller; xdist workers inherit the environment.
    if hasattr(config, "workerinput"):
        return
    if not os.environ.get(services.POSTGRES_URL_ENV):
        url = services.postgres_url()
        _started_private_pg = url != services.DEFAULT_POSTGRES_URL
        os.environ[services.POSTGRES_URL_ENV] = url


def pytest_unconfigure(config: pytest.Config) -> None:
    if _started_private_pg and not hasattr(config, "workerinput"):
        services.stop_private_postgres()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The base URL of the real PostgreSQL server."""
    return services.postgres_url()


@pytest.fixture
def pg_url(postgres_server_url: str) -> Iterator[str]:
    """A URL of the real PostgreSQL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:16]}"
    base = make_url(postgres_server_url)
    conninfo = {
        "host": base.host,
        "port": base.port or 5432,
        "user": base.username,
        "dbname": base.database,
    }
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(**conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the real PostgreSQL, in a fresh schema."""
    from pytest_reliability.db import make_engine

    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'reliability.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on a fresh SQLite file."""
    from pytest_reliability.db import make_engine

    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on a SQLite file and on the real PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The URL of the real Redis server."""
    return services.redis_url()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The URL of the real Redis (pair with ``redis_prefix`` to keep tests apart)."""
    return redis_server_url


@pytest.fixture
def redis_prefix(redis_server_url: str) -> Iterator[str]:
    """A unique key prefix on the real Redis; every key under it is deleted afterwards."""
    import redis

    prefix = f"t-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
