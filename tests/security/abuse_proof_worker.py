"""A worker of the multi-process limit proof: sends requests for one subject, counts allowed.

Every process builds its own protection on the shared store (PostgreSQL or Redis), with a
manual clock stopped at the same instant in every process, so all requests fall in one window
of the burst detector and the limit is exact: whatever the interleaving, at most ``LIMIT`` of
all the processes' requests may be allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pytest_reliability.clock import ManualClock
from pytest_reliability.security.abuse_protection import (
    AbusePolicy,
    AbuseProtection,
    RequestBurst,
    Signal,
    Threshold,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

LIMIT = 25
SUBJECT = "198.51.100.77"
START = datetime(2025, 6, 1, 12, 0, 0, 100_000, tzinfo=UTC)  # 0.1 s into a 60 s window
POLICY = AbusePolicy(
    detectors=(RequestBurst((Threshold(60.0, LIMIT, Tier.THROTTLE),)),),
    throttle_rate=LIMIT,  # throttled, a subject is still denied while over the burst limit
    throttle_strikes=10**6,
)


def work(url: str, prefix: str, tenant: str, requests: int, out: str) -> None:
    """Send ``requests`` requests; write how many were allowed to ``out``."""
    options = {"prefix": prefix, "durability": "warn"} if url.startswith("redis") else {}
    protection = AbuseProtection.from_url(url, POLICY, clock=ManualClock(START), **options)
    allowed = 0
    with tenant_scope(tenant):
        for _ in range(requests):
            decision = protection.decide(Signal.request(SUBJECT, "/api"))
            assert not decision.store_unavailable, decision
            allowed += decision.allowed
    protection.close()
    Path(out).write_text(str(allowed))
