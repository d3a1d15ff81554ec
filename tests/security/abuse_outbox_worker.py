"""A process that decides while its audit log is down, says so, then waits to be killed.

Run as ``python -m tests.security.abuse_outbox_worker URL OPTIONS_JSON TENANT``. The audit log
is a real :class:`~pytest_reliability.audit.AuditLog` on a SQLite file in a directory that does
not exist, so every append fails the way a lost audit database does. The worker escalates one
subject to BLOCK (an escalation and an enforcement, both audited), prints ``committed`` once the
decision returned (so its step is committed in the store), then blocks on stdin until the test
kills it with SIGKILL: nothing in this process ever delivers those events.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from pytest_reliability.audit import AuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.db import make_engine
from pytest_reliability.security.abuse_protection import (
    AbusePolicy,
    AbuseProtection,
    Scraping,
    Signal,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
SUBJECT = "203.0.113.66"
POLICY = AbusePolicy(detectors=(Scraping(),), block_ladder=(60.0,))


def main(url: str, options: dict[str, Any], tenant: str) -> None:
    """Decide once with the audit log down, report, and wait for the kill."""
    down = AuditLog(make_engine("sqlite:////nonexistent-audit-dir/audit.db"))
    protection = AbuseProtection.from_url(
        url, POLICY, clock=ManualClock(START), audit=down, **options
    )
    with tenant_scope(tenant):
        decision = protection.decide(Signal.request(SUBJECT, "/.env"))
    assert decision.tier is Tier.BLOCK, decision
    print("committed", flush=True)
    sys.stdin.read()  # the test kills the process while it waits here


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
