"""The in-process store: rows in a dictionary, one lock, the transition run under it.

For one instance (tests, a single worker) and as the bounded local fallback while a shared
store is down. ``max_subjects`` bounds memory: past it the oldest rows are evicted
first, except subjects still blocked, which are kept.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any, final

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._store import RowKey
from pytest_reliability.security.abuse_protection._transition import Outcome, Params, transition

__all__ = ["MemoryAbuseStore"]


@final
class MemoryAbuseStore:
    """Abuse state in this process's memory. Thread-safe."""

    __slots__ = ("_blocked", "_lock", "_rows", "max_rows")

    def __init__(self, *, max_rows: int = 1_000_000) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigurationError(f"max_rows {max_rows!r}: need a whole number >= 1")
        self.max_rows = max_rows
        # Insertion order is the eviction order (oldest first); a dict keeps it for free.
        self._rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        # Blocked subjects and their block end, so the sweeper never scans every row under the
        # lock (a million rows would stall every decision meanwhile).
        self._blocked: dict[tuple[str, str], int] = {}

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
    ) -> Outcome:
        """Run the transition on the rows under the store's lock."""
        rows_map = self._rows
        with self._lock:
            rows = []
            for kind, name in keys:
                key = (tenant, kind, name)
                row = rows_map.get(key)
                if row is None:
                    row = rows_map[key] = {}
                    if len(rows_map) > self.max_rows:
                        self._evict()
                rows.append(row)
            out = transition(rows, now_ms, checks, params, force=force, consume=consume)
            subject = (tenant, keys[0][1])
            if out.tier == 3:
                self._blocked[subject] = out.until
            elif subject in self._blocked:
                del self._blocked[subject]
            return out

    def _evict(self) -> None:
        # Oldest first; a subject still blocked is never evicted (it would walk free).
        for key in list(self._rows):
            if len(self._rows) <= self.max_rows:
                return
            if self._rows[key].get("tier") != 3:
                del self._rows[key]

    def read(self, tenant: str, subject: str) -> dict[str, Any] | None:
        """Return a copy of the subject's row, or None."""
        with self._lock:
            row = self._rows.get((tenant, "s", subject))
            return copy.deepcopy(row) if row is not None else None

    def expired_blocks(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """Subjects whose block ended by ``now_ms``."""
        with self._lock:
            found = [subject for subject, until in self._blocked.items() if until <= now_ms]
        return found[:limit]

    def purge(self, now_ms: int) -> int:
        """Drop rows past their retention."""
        with self._lock:
            dead = [k for k, row in self._rows.items() if row.get("x", 0) <= now_ms]
            for k in dead:
                del self._rows[k]
                if k[1] == "s":
                    self._blocked.pop((k[0], k[2]), None)
        return len(dead)

    def close(self) -> None:
        """Nothing to release."""
