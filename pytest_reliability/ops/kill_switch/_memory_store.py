"""The in-memory kill switch store: one process, never shared, never stale."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import final

from pytest_reliability.ops.kill_switch._model import AuditHook, SwitchRecord


@final
class MemoryStore:
    """Switches in this process's memory: never shared with another process, never stale."""

    kind = "memory"
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, SwitchRecord] = {}

    def read_all(self) -> Mapping[str, SwitchRecord]:
        """Return every record."""
        with self._lock:
            return dict(self._records)

    def write(self, record: SwitchRecord, audit: AuditHook) -> SwitchRecord:
        """Audit, then store ``record`` (both in this process)."""
        with self._lock:
            old = self._records.get(record.name)
            stored = replace(record, version=(old.version if old else 0) + 1)
            audit(None)
            self._records[record.name] = stored
        return stored

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Nothing to listen to: there is no other instance."""

    def close(self) -> None:
        """Nothing to release."""
