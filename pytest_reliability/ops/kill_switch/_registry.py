"""The kill switch store schemes, registered in :mod:`pytest_reliability.stores` on import.

Each factory imports its backend when it is first called, so importing the kill switch package
costs neither redis nor the SQL store's dialect modules.
"""

from __future__ import annotations

from typing import Any

from pytest_reliability import stores
from pytest_reliability.ops.kill_switch._model import KillSwitchStore

STORE_KIND = "kill_switch"
"""The kind kill switch stores register under in :mod:`pytest_reliability.stores`."""


def memory_factory(url: Any, **options: Any) -> KillSwitchStore:
    """Build the in-process store (``memory://``); the options do not apply to it."""
    from pytest_reliability.ops.kill_switch._memory_store import MemoryStore

    return MemoryStore()


def redis_factory(
    url: Any,
    *,
    namespace: str,
    key_prefix: str = "",
    durability: str = "require",
    store_timeout: float | None = None,
    **options: Any,
) -> KillSwitchStore:
    """Build the Redis store for ``url`` (``redis://``, ``rediss://``, ``unix://``)."""
    from pytest_reliability.ops.kill_switch._redis_store import RedisStore

    return RedisStore(
        url,
        namespace=namespace,
        key_prefix=key_prefix,
        durability=durability,  # type: ignore[arg-type]  # checked by the store
        **({} if store_timeout is None else {"socket_timeout": store_timeout}),
    )


def sql_factory(
    url: Any,
    *,
    namespace: str,
    channel: str | None = None,
    store_timeout: float | None = None,
    **options: Any,
) -> KillSwitchStore:
    """Build the SQL store for a SQLAlchemy URL or engine (SQLite or PostgreSQL)."""
    from pytest_reliability.ops.kill_switch._sql_store import sql_store

    timeouts = {} if store_timeout is None else {"timeout": store_timeout}
    return sql_store(url, namespace=namespace, channel=channel, **timeouts)


stores.register_standard_stores(
    STORE_KIND, memory=memory_factory, redis=redis_factory, sql=sql_factory
)
