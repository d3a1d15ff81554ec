"""The ops API: block, unblock and read through require_ops_permission, audited both ways."""

from __future__ import annotations

import functools

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import ConfigurationError, PermissionDenied
from pytest_reliability.ops import (
    AuthorizationEngine,
    OpsContext,
    OpsSession,
    Permission,
    require_ops_permission,
)
from pytest_reliability.security.abuse_protection import (
    AUDIT_ESCALATED,
    AUDIT_UNBLOCKED,
    PERMISSION_BLOCK,
    PERMISSION_READ,
    PERMISSION_UNBLOCK,
    AbuseOps,
    AbuseProtection,
    Signal,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.abuse
IP = "203.0.113.40"


@pytest.fixture
def setup(clock: ManualClock) -> tuple[AbuseOps, InMemoryAuditLog, AbuseProtection]:
    audit = InMemoryAuditLog(clock=clock)
    authz = AuthorizationEngine()
    authz.grant("alice", "ops_operator", tenant="acme")
    authz.grant("vic", "ops_viewer", tenant="acme")
    session = OpsSession(authz=authz, audit=audit)
    protection = AbuseProtection.from_url("memory://", clock=clock, audit=audit)
    return (
        AbuseOps(protection, functools.partial(require_ops_permission, session)),
        audit,
        protection,
    )


def test_the_permission_names_are_the_registered_ones() -> None:
    assert (PERMISSION_READ, PERMISSION_BLOCK, PERMISSION_UNBLOCK) == (
        Permission.ABUSE_READ, Permission.ABUSE_BLOCK, Permission.ABUSE_UNBLOCK
    )  # fmt: skip


def test_an_operator_blocks_and_unblocks_and_every_step_is_audited(
    setup: tuple[AbuseOps, InMemoryAuditLog, AbuseProtection],
) -> None:
    ops, audit, protection = setup
    alice = OpsContext("alice", "acme")
    assert ops.block(alice, IP, 600, reason="ticket 42").tier is Tier.BLOCK
    with tenant_scope("acme"):
        assert protection.decide(Signal.request(IP, "/")).status == 403
    assert ops.status(alice, IP).tier is Tier.BLOCK
    assert ops.unblock(alice, IP, reason="resolved").allowed
    with tenant_scope("acme"):
        assert protection.decide(Signal.request(IP, "/")).allowed
        events = audit.events()
    assert [e.action for e in events] == [
        "ops.permission", AUDIT_ESCALATED, "abuse.enforced", "ops.permission",
        "ops.permission", AUDIT_UNBLOCKED,
    ]  # fmt: skip
    escalated = next(e for e in events if e.action == AUDIT_ESCALATED)
    assert (escalated.actor, escalated.details["detector"]) == ("alice", "manual")
    with tenant_scope("globex"):
        assert protection.status(IP).tier is Tier.NORMAL  # acted in acme only


def test_a_viewer_may_read_but_not_block_and_the_denial_is_audited(
    setup: tuple[AbuseOps, InMemoryAuditLog, AbuseProtection],
) -> None:
    ops, audit, protection = setup
    vic = OpsContext("vic", "acme")
    assert ops.status(vic, IP).tier is Tier.NORMAL
    with pytest.raises(PermissionDenied):
        ops.block(vic, IP, 600, reason="x")
    with pytest.raises(PermissionDenied):
        ops.unblock(OpsContext("mallory", "acme"), IP, reason="x")
    with pytest.raises(PermissionDenied):
        ops.block(OpsContext("alice", "globex"), IP, 600, reason="x")  # not alice's tenant
    with tenant_scope("acme"):
        outcomes = [e.outcome for e in audit.events(action="ops.permission")]
        assert protection.status(IP).tier is Tier.NORMAL
    assert outcomes == ["allow", "deny", "deny"]


def test_without_an_authoriser_nothing_is_reachable(clock: ManualClock) -> None:
    with pytest.raises(ConfigurationError):
        AbuseOps(AbuseProtection.from_url("memory://"), None)  # type: ignore[arg-type]
