"""An in-process store for unit tests and single-process services; nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, final

from pytest_reliability.errors import LeaseLost
from pytest_reliability.idempotency._model import Claim, Record, Scope, State
from pytest_reliability.idempotency._store import Deferred

__all__ = ["MemoryStore"]


@final
class MemoryStore:
    """Records in a dict behind one lock; the same semantics as the shared stores."""

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._records: dict[Scope, Record] = {}
        self._lock = threading.RLock()

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
        """Acquire the key or return its record (see :class:`IdempotencyStore`)."""
        with self._lock:
            record = self._records.get(scope)
            if record is None or record.expires_ms <= now_ms:
                self._records[scope] = Record(
                    State.IN_PROGRESS, fingerprint, token, 1, now_ms + lease_ms,
                    now_ms + retention_ms,
                )  # fmt: skip
                return Claim(acquired=True, token=token, fence=1)
            if record.fingerprint != fingerprint or record.state is not State.IN_PROGRESS:
                return Claim(acquired=False, record=record)
            if record.lease_expires_ms > now_ms:
                return Claim(acquired=False, record=record)
            fence = record.fence + 1
            self._records[scope] = replace(
                record, token=token, fence=fence, lease_expires_ms=now_ms + lease_ms
            )
            if on_takeover is not None:
                on_takeover(None, fence)
            return Claim(acquired=True, token=token, fence=fence, takeover=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """There is no local transaction in memory; deferred effects run under the lock."""
        yield None

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
        """Complete the record if ``token`` holds it, running ``deferred`` under the lock."""
        with self._lock:
            record = self._held(scope, token)
            for effect in deferred:
                effect(None)
            self._records[scope] = replace(
                record,
                state=State.COMPLETED,
                response=response,
                expires_ms=now_ms + retention_ms,
            )

    def _held(self, scope: Scope, token: str) -> Record:
        record = self._records.get(scope)
        if record is None or record.token != token or record.state is not State.IN_PROGRESS:
            raise LeaseLost("the lease on this key was taken over by another worker")
        return record

    def fail(self, scope: Scope, token: str, error: str, *, now_ms: int, retention_ms: int) -> bool:
        """Store a terminal failure if ``token`` holds the key."""
        with self._lock:
            try:
                record = self._held(scope, token)
            except LeaseLost:
                return False
            self._records[scope] = replace(
                record, state=State.FAILED, error=error, expires_ms=now_ms + retention_ms
            )
            return True

    def release(self, scope: Scope, token: str) -> bool:
        """Forget the record if ``token`` holds it."""
        with self._lock:
            try:
                self._held(scope, token)
            except LeaseLost:
                return False
            del self._records[scope]
            return True

    def get(self, scope: Scope) -> Record | None:
        """Return the record, or None."""
        with self._lock:
            return self._records.get(scope)

    def purge(self, now_ms: int) -> int:
        """Drop records past retention."""
        with self._lock:
            dead = [
                s
                for s, r in self._records.items()
                if r.expires_ms <= now_ms
                and (r.state is not State.IN_PROGRESS or r.lease_expires_ms <= now_ms)
            ]
            for scope in dead:
                del self._records[scope]
            return len(dead)

    def close(self) -> None:
        """Nothing to release."""
