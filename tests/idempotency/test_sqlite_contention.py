"""On SQLite a duplicate does not queue behind a first delivery's running handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import IdempotencyInProgress
from pytest_reliability.idempotency import IdempotencyEngine
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.idempotency


def test_duplicate_gets_409_at_once_while_a_handler_holds_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    first = IdempotencyEngine.from_url(url, audit=InMemoryAuditLog())
    second = IdempotencyEngine.from_url(url, audit=InMemoryAuditLog())
    running, finish = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def slow_handler(_attempt: Any) -> dict[str, bool]:
        running.set()
        assert finish.wait(30)
        return {"charged": True}

    def deliver_first() -> None:
        with tenant_scope("acme"):
            results["first"] = first.run(
                operation="billing.charge", key="inv-1", payload={"amount": 5},
                handler=slow_handler,
            )  # fmt: skip

    worker = threading.Thread(target=deliver_first)
    worker.start()
    try:
        assert running.wait(10)
        began = time.monotonic()
        with tenant_scope("acme"), pytest.raises(IdempotencyInProgress):
            second.run(
                operation="billing.charge", key="inv-1", payload={"amount": 5},
                handler=slow_handler,
            )  # fmt: skip
        waited = time.monotonic() - began
        # Without the lock-free look, the duplicate waits for SQLite's 30 s busy timeout.
        assert waited < 2.0, f"the duplicate queued behind the running handler for {waited:.1f} s"
    finally:
        finish.set()
        worker.join(30)
    assert results["first"].response == {"charged": True}
    with tenant_scope("acme"):
        replay = second.run(
            operation="billing.charge", key="inv-1", payload={"amount": 5}, handler=slow_handler
        )
    assert replay.replayed
    assert replay.response == {"charged": True}
    first.close()
    second.close()
