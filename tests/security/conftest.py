"""Helpers for the abuse protection tests: a manual clock, an audit log, a protection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.security.abuse_protection import AbusePolicy, AbuseProtection
from pytest_reliability.tenancy import tenant_scope


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()


@pytest.fixture
def audit(clock: ManualClock) -> InMemoryAuditLog:
    """An in-memory audit log on the test's clock."""
    return InMemoryAuditLog(clock=clock)


@pytest.fixture
def tenant() -> Iterator[str]:
    """Run the test in tenant ``acme``."""
    with tenant_scope("acme") as t:
        yield t


@pytest.fixture
def protect(
    clock: ManualClock, audit: InMemoryAuditLog, tenant: str
) -> Callable[..., AbuseProtection]:
    """``protect(policy=None, url="memory://")``: a protection on the test's clock and audit."""
    made: list[AbuseProtection] = []

    def make(
        policy: AbusePolicy | None = None, url: str = "memory://", **kw: Any
    ) -> AbuseProtection:
        p = AbuseProtection.from_url(url, policy, clock=clock, audit=audit, **kw)
        made.append(p)
        return p

    yield make  # type: ignore[misc]
    for p in made:
        p.close()
