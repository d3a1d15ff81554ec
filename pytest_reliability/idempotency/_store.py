"""The store interface every backend implements, and the factory that picks one by URL.

A store keeps one record per :class:`Scope` and makes each step atomic: ``claim`` creates an
IN_PROGRESS record or takes over one whose lease expired (bumping the fencing counter and issuing
a new token); ``complete``, ``fail`` and ``release`` succeed only for the current token, so a
worker whose lease was taken over cannot finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from pytest_reliability import stores
from pytest_reliability.idempotency._model import Claim, Record, Scope

__all__ = ["STORE_KIND", "Deferred", "IdempotencyStore", "store_from_url"]

Deferred = Callable[[Any], None]
"""A local effect run inside the completing transaction; it receives the store's handle."""


@runtime_checkable
class IdempotencyStore(Protocol):
    """What the engine needs from a backend. Times are integer milliseconds since the epoch."""

    def claim(
        self,
        scope: Scope,
        fingerprint: str,
        *,
        token: str,
        now_ms: int,
        lease_ms: int,
        retention_ms: int,
        on_takeover: Callable[[Any, int], None] | None = None,
    ) -> Claim:
        """Acquire the key with ``token``, or return the record that holds it.

        ``on_takeover(handle, fence)`` runs inside the transaction that takes an expired lease over.
        """
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """Open the transaction a handler's local effects and the completion share."""
        ...

    def complete(
        self,
        scope: Scope,
        token: str,
        response: str,
        *,
        now_ms: int,
        retention_ms: int,
        handle: Any,
        deferred: Sequence[Deferred] = (),
    ) -> None:
        """Mark the record COMPLETED with ``response`` and run ``deferred`` effects atomically.

        Raises :class:`~pytest_reliability.errors.LeaseLost` when ``token`` no longer holds it.
        """
        ...

    def fail(self, scope: Scope, token: str, error: str, *, now_ms: int, retention_ms: int) -> bool:
        """Store a terminal failure; return False when ``token`` no longer holds the key."""
        ...

    def release(self, scope: Scope, token: str) -> bool:
        """Delete the record held by ``token`` (a retryable failure); False if not held."""
        ...

    def get(self, scope: Scope) -> Record | None:
        """Return the stored record, or None."""
        ...

    def purge(self, now_ms: int) -> int:
        """Delete records past their retention (and leases long dead); return how many."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


STORE_KIND = "idempotency"
"""The kind idempotency stores register under in :mod:`pytest_reliability.stores`."""


def store_from_url(url: str, **options: Any) -> IdempotencyStore:
    """Return the store for ``url``: ``memory://``, ``redis://``/``rediss://``/``unix://``, or SQL.

    A SQLAlchemy URL (``sqlite:///PATH``, ``postgresql://...``) gives the SQL store. The scheme is
    looked up in :mod:`pytest_reliability.stores` (kind ``idempotency``), where a repository can
    register its own. An unknown scheme, or one whose extra is not installed, raises
    :class:`~pytest_reliability.errors.ConfigurationError` naming the known schemes or the extra.
    """
    store: IdempotencyStore = stores.store_from_url(STORE_KIND, url, **options)
    return store


def _memory(url: str, **options: Any) -> IdempotencyStore:
    from pytest_reliability.idempotency._memory_store import MemoryStore

    return MemoryStore(**options)


def _redis(url: str, **options: Any) -> IdempotencyStore:
    from pytest_reliability.idempotency._redis_store import RedisStore

    return RedisStore.from_url(url, **options)


def _sql(url: str, **options: Any) -> IdempotencyStore:
    from pytest_reliability.idempotency._sql_store import SqlStore

    return SqlStore.from_url(url, **options)


stores.register_standard_stores(STORE_KIND, memory=_memory, redis=_redis, sql=_sql)
