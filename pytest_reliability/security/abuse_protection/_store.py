"""The abuse store interface, and the factory that picks a backend by URL.

A store keeps rows of JSON-able state per (tenant, row key) and applies one signal atomically:
:meth:`AbuseStore.apply` loads the subject's row (and the account's, when the signal names one),
runs :func:`~pytest_reliability.security.abuse_protection._transition.transition` on them and
writes them back, all in one step no concurrent writer can interleave with. Every failure to
read or write is an :class:`~pytest_reliability.errors.AbuseStoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pytest_reliability import stores
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._transition import Outcome, Params

__all__ = ["STORE_KIND", "AbuseStore", "RowKey", "store_from_url"]

RowKey = tuple[str, str]
"""``("s", subject)`` for a subject's row, ``("a", digest)`` for an account's."""


@runtime_checkable
class AbuseStore(Protocol):
    """What :class:`AbuseProtection` needs from a backend. Times are epoch milliseconds."""

    def apply(
        self,
        tenant: str,
        keys: Sequence[RowKey],
        now_ms: int,
        checks: Sequence[Check],
        params: Params,
        *,
        force: tuple[Any, ...] | None = None,
        consume: bool = True,
        record: tuple[str, str] | None = None,
    ) -> Outcome:
        """Run the transition on the rows ``keys`` (the subject's first) atomically.

        With ``record`` (actor, observer), a step that must be audited
        (:func:`~pytest_reliability.security.abuse_protection._auditing.needs_record`) also
        writes its outbox record in the same atomic step; with the outbox at its cap
        (:data:`~pytest_reliability.security.abuse_protection._auditing.OUTBOX_CAP`) such a step
        raises :class:`~pytest_reliability.errors.AbuseStoreUnavailable` and changes nothing.
        """
        ...

    def outbox_peek(self, limit: int) -> list[tuple[str, str]]:
        """Return up to ``limit`` pending outbox records (id, JSON text), oldest first."""
        ...

    def outbox_delete(self, record_id: str) -> None:
        """Delete one outbox record (its events are in the audit log)."""
        ...

    def outbox_lease(self, owner: str, lease_ms: int) -> bool:
        """Take (or renew) the flush lease for ``owner`` for ``lease_ms``; False if another
        owner holds it. One flusher at a time keeps the audit log's order and no repeats."""
        ...

    def outbox_release(self, owner: str) -> None:
        """Give the flush lease back if ``owner`` holds it."""
        ...

    def read(self, tenant: str, subject: str) -> dict[str, Any] | None:
        """Return the subject's stored row (a copy), or None; changes nothing."""
        ...

    def expired_blocks(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """Return up to ``limit`` (tenant, subject) whose stored block ended by ``now_ms``."""
        ...

    def purge(self, now_ms: int) -> int:
        """Delete rows past their retention; return how many."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


STORE_KIND = "abuse"
"""The kind abuse stores register under in :mod:`pytest_reliability.stores`."""


def store_from_url(url: str, **options: Any) -> AbuseStore:
    """Return the abuse store for ``url``: ``memory://``, ``sqlite:///PATH``,
    ``postgresql://...`` or ``redis://...`` (``rediss://``, ``unix://``).

    Looked up in :mod:`pytest_reliability.stores` (kind ``abuse``), where a repository can
    register its own scheme. An unknown scheme or a missing extra raises
    :class:`~pytest_reliability.errors.ConfigurationError` naming the known schemes or the extra.
    """
    store: AbuseStore = stores.store_from_url(STORE_KIND, url, **options)
    return store


def _memory(url: str, **options: Any) -> AbuseStore:
    from pytest_reliability.security.abuse_protection._memory_store import MemoryAbuseStore

    return MemoryAbuseStore(**options)


def _redis(url: str, **options: Any) -> AbuseStore:
    from pytest_reliability.security.abuse_protection._redis_store import RedisAbuseStore

    return RedisAbuseStore.from_url(url, **options)


def _sql(url: str, **options: Any) -> AbuseStore:
    from pytest_reliability.security.abuse_protection._sql_store import SqlAbuseStore

    return SqlAbuseStore.from_url(url, **options)


stores.register_standard_stores(STORE_KIND, memory=_memory, redis=_redis, sql=_sql)
