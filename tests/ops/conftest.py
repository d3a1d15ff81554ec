"""Shared pieces for the ops control plane tests: an operator session and helpers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsContext, OpsSession
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope

OPERATOR = OpsContext("alice@ops")
VIEWER = OpsContext("victor@ops")
NOBODY = OpsContext("mallory@example")


@pytest.fixture
def audit() -> InMemoryAuditLog:
    """An in-memory audit log."""
    return InMemoryAuditLog()


@pytest.fixture
def authz() -> AuthorizationEngine:
    """An engine where alice operates, victor views and mallory has no role."""
    engine = AuthorizationEngine()
    engine.grant(OPERATOR.actor, "ops_operator")
    engine.grant(VIEWER.actor, "ops_viewer")
    return engine


@pytest.fixture
def session(authz: AuthorizationEngine, audit: InMemoryAuditLog) -> OpsSession:
    """An ops session with the engine above and the in-memory audit log."""
    return OpsSession(authz, audit)


def platform_events(audit: InMemoryAuditLog, action: str | None = None) -> list[tuple[str, ...]]:
    """Return (action, actor, target, outcome) of the platform chain's events."""
    with tenant_scope(PLATFORM_SCOPE):
        return [(e.action, e.actor, e.target, e.outcome) for e in audit.events(action=action)]


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a kill switch thread running."""
    yield
    leaked = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("kill-switches-") and t.is_alive()
    ]
    assert not leaked, f"threads left running: {leaked}"


def seed_store(url: str, **options: Any) -> None:
    """Seed a new Redis kill switch store as an operator would, with a session of its own.

    A Redis store without its marker reads every switch engaged until an operator seeds it.
    """
    authz = AuthorizationEngine()
    authz.grant(OPERATOR.actor, "ops_operator")
    options = {"durability": "warn", **options}
    options |= {"session": OpsSession(authz, InMemoryAuditLog()), "start": False, "env": {}}
    with KillSwitches.from_url(url, **options) as seeder:
        seeder.seed(reason="new store", actor=OPERATOR)
