"""The in-process store: rows in a dictionary, one lock, the transition run under it.

For one instance (tests, a single worker) and as the bounded local fallback while a shared
store is down. ``max_subjects`` bounds memory: past it the oldest rows are evicted
first, except subjects still blocked, which are kept. Outbox records are kept in order under the
same lock as the rows (they live as long as the process, like the rows).
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, final

from pytest_reliability.errors import AbuseStoreUnavailable, ConfigurationError
from pytest_reliability.security.abuse_protection._auditing import (
    OUTBOX_CAP,
    needs_record,
    outbox_record,
)
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._store import RowKey
from pytest_reliability.security.abuse_protection._transition import (
    Outcome,
    Params,
    deny_blocked,
    transition,
)

__all__ = ["MemoryAbuseStore"]


@final
class MemoryAbuseStore:
    """Abuse state in this process's memory. Thread-safe."""

    __slots__ = ("_blocked", "_lock", "_outbox", "_rows", "max_rows", "outbox_cap")

    def __init__(self, *, max_rows: int = 1_000_000, outbox_cap: int = OUTBOX_CAP) -> None:
        for name, value in (("max_rows", max_rows), ("outbox_cap", outbox_cap)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} {value!r}: need a whole number >= 1")
        self.max_rows = max_rows
        self.outbox_cap = outbox_cap
        self._outbox: OrderedDict[str, str] = OrderedDict()
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
        record: tuple[str, str] | None = None,
    ) -> Outcome:
        """Run the transition on the rows under the store's lock (and record it if audited)."""
        rows_map = self._rows
        with self._lock:
            full = record is not None and len(self._outbox) >= self.outbox_cap
            rows = []
            for kind, name in keys:
                key = (tenant, kind, name)
                row = rows_map.get(key)
                if row is None:
                    row = rows_map[key] = {}
                    if len(rows_map) > self.max_rows:
                        self._evict()
                # Outbox full: work on copies, kept only if the step needs no record.
                rows.append(copy.deepcopy(row) if full else row)
            out = transition(rows, now_ms, checks, params, force=force, consume=consume)
            if record is not None and needs_record(out, force):
                if full:
                    raise AbuseStoreUnavailable(
                        f"abuse audit outbox is full ({self.outbox_cap} records): an audited "
                        "step is refused until the audit log takes them"
                    )
                record_id = secrets.token_hex(12)
                self._outbox[record_id] = outbox_record(
                    record_id, tenant, keys[0][1], now_ms, record, force, out
                )
            elif full:
                for (kind, name), row in zip(keys, rows, strict=True):
                    rows_map[(tenant, kind, name)] = row
            subject = (tenant, keys[0][1])
            if out.tier == 3:
                self._blocked[subject] = out.until
            elif subject in self._blocked:
                del self._blocked[subject]
            return out

    def deny_blocked(
        self, tenant: str, subject: str, now_ms: int, params: Params
    ) -> tuple[int, int] | None:
        """The step :meth:`apply` takes for a signal of a subject still blocked, when that step
        audits nothing and touches no account row: ``(until, retry_ms)``, or ``None`` with
        nothing changed when it is not that case (see
        :func:`~pytest_reliability.security.abuse_protection._transition.deny_blocked`)."""
        with self._lock:
            row = self._rows.get((tenant, "s", subject))
            if row is None:
                return None
            retry = deny_blocked(row, now_ms, params)
            if not retry:
                return None
            # _blocked already holds this end: apply put it there when the row went BLOCK, and
            # only apply changes a row's tier or end.
            return row["until"], retry

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

    def outbox_peek(self, limit: int) -> list[tuple[str, str]]:
        """Pending outbox records, oldest first."""
        with self._lock:
            found: list[tuple[str, str]] = []
            for item in self._outbox.items():
                if len(found) >= limit:
                    break
                found.append(item)
            return found

    def outbox_delete(self, record_id: str) -> None:
        """Forget one delivered record."""
        with self._lock:
            self._outbox.pop(record_id, None)

    def outbox_lease(self, owner: str, lease_ms: int) -> bool:
        """Always granted: the store lives in one process, whose flusher holds its own lock."""
        return True

    def outbox_release(self, owner: str) -> None:
        """Nothing held."""

    def close(self) -> None:
        """Nothing to release."""
