"""RBAC: deny by default, tenant scoping, typed errors, audited allow and deny."""

from __future__ import annotations

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.errors import ConfigurationError, InvalidInput, PermissionDenied
from pytest_reliability.ops.rbac import (
    AuthorizationEngine,
    OpsContext,
    OpsSession,
    Permission,
    known_permissions,
    register_permission,
    require_ops_permission,
)
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope
from tests.ops.conftest import NOBODY, OPERATOR, VIEWER, platform_events


def test_allow_and_deny_are_both_audited(session: OpsSession, audit: InMemoryAuditLog) -> None:
    decision = require_ops_permission(session, OPERATOR, Permission.KILL_SWITCH_ENGAGE)
    assert decision.allowed
    assert decision.reason == "granted by role ops_operator"
    with pytest.raises(PermissionDenied) as info:
        require_ops_permission(session, VIEWER, Permission.KILL_SWITCH_ENGAGE)
    assert (info.value.permission, info.value.actor) == ("ops.kill_switch.engage", VIEWER.actor)
    assert [(e[1], e[3]) for e in platform_events(audit, "ops.permission")] == [
        (OPERATOR.actor, "allow"),
        (VIEWER.actor, "deny"),
    ]
    with tenant_scope(PLATFORM_SCOPE):
        denied = audit.events()[-1]
    assert denied.details["reason"] == "no role grants it"


def test_an_actor_without_a_role_is_denied_and_says_so(session: OpsSession) -> None:
    with pytest.raises(PermissionDenied, match="actor has no role"):
        require_ops_permission(session, NOBODY, Permission.HEALTH_READ)


def test_an_unknown_permission_is_denied_at_check_time(
    session: OpsSession, audit: InMemoryAuditLog
) -> None:
    with pytest.raises(PermissionDenied, match="unknown permission"):
        require_ops_permission(session, OPERATOR, "ops.does_not.exist")
    assert platform_events(audit)[-1][3] == "deny"


def test_an_unknown_permission_in_a_role_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown ops permission"):
        AuthorizationEngine(roles={"broken": ["ops.kill_switch.engage", "ops.typo.here"]})
    engine = AuthorizationEngine()
    with pytest.raises(ConfigurationError, match="unknown role"):
        engine.grant("bob", "no_such_role")
    with pytest.raises(ConfigurationError):
        engine.define_role("Bad Name", [])


def test_a_tenant_binding_never_grants_a_platform_permission(audit: InMemoryAuditLog) -> None:
    engine = AuthorizationEngine()
    engine.grant("tenant-admin", "ops_admin", tenant="acme")
    session = OpsSession(engine, audit)
    in_acme = OpsContext("tenant-admin", tenant="acme")
    assert require_ops_permission(session, in_acme, Permission.AUDIT_READ).allowed
    with pytest.raises(PermissionDenied, match="tenant binding does not grant a platform"):
        require_ops_permission(session, in_acme, Permission.KILL_SWITCH_ENGAGE)
    # ...and the binding does not leak into another tenant.
    with pytest.raises(PermissionDenied, match="actor has no role"):
        require_ops_permission(
            session, OpsContext("tenant-admin", tenant="globex"), "ops.audit.read"
        )
    with tenant_scope("acme"):
        assert [e.outcome for e in audit.events()] == ["allow", "deny"]


def test_a_platform_binding_holds_in_every_tenant(session: OpsSession) -> None:
    ctx = OpsContext(OPERATOR.actor, tenant="acme")
    assert require_ops_permission(session, ctx, Permission.KILL_SWITCH_READ).allowed


def test_roles_carried_by_the_context_apply_in_its_tenant_only(session: OpsSession) -> None:
    ctx = OpsContext("svc-token", tenant="acme", roles=frozenset({"ops_admin"}))
    assert require_ops_permission(session, ctx, Permission.AUDIT_READ).allowed
    with pytest.raises(PermissionDenied):
        require_ops_permission(session, ctx, Permission.DEGRADATION_SET)
    with pytest.raises(PermissionDenied, match="unknown role"):
        require_ops_permission(
            session, OpsContext("x", roles=frozenset({"wizard"})), Permission.HEALTH_READ
        )


def test_revoking_a_role_denies_again(session: OpsSession, authz: AuthorizationEngine) -> None:
    authz.revoke(OPERATOR.actor, "ops_operator")
    with pytest.raises(PermissionDenied):
        require_ops_permission(session, OPERATOR, Permission.KILL_SWITCH_ENGAGE)


def test_registering_permissions() -> None:
    spec = register_permission("ops.cache.flush", scope="platform", description="flush caches")
    assert spec in known_permissions()
    assert register_permission("ops.cache.flush", scope="platform") == spec
    with pytest.raises(ConfigurationError):
        register_permission("ops.cache.flush", scope="tenant")
    with pytest.raises(ConfigurationError):
        register_permission("NotDotted", scope="tenant")
    engine = AuthorizationEngine(roles={"cache_keeper": ["ops.cache.flush"]})
    engine.grant("carol", "cache_keeper")
    assert engine.decide(OpsContext("carol"), "ops.cache.flush").allowed


def test_bad_contexts_are_typed_errors(session: OpsSession) -> None:
    with pytest.raises(InvalidInput):
        OpsContext("")
    with pytest.raises(InvalidInput):
        OpsContext("bob", tenant="not a tenant!")
    with pytest.raises(PermissionDenied):
        require_ops_permission(session, "alice@ops", Permission.HEALTH_READ)  # type: ignore[arg-type]


def test_a_check_without_an_audit_sink_fails_closed(authz: AuthorizationEngine) -> None:
    with pytest.raises(ConfigurationError, match="audit sink"):
        require_ops_permission(authz, OPERATOR, Permission.HEALTH_READ)


def test_a_tenant_named_platform_never_gets_platform_rights(audit: InMemoryAuditLog) -> None:
    """A customer tenant called "platform" is an ordinary tenant, not the platform scope."""
    authz = AuthorizationEngine()
    authz.grant("mallory", "ops_admin", tenant="platform")
    session = OpsSession(authz, audit)
    with pytest.raises(PermissionDenied, match="tenant binding does not grant"):
        require_ops_permission(
            session, OpsContext("mallory", tenant="platform"), Permission.KILL_SWITCH_ENGAGE
        )
    for permission in (Permission.KILL_SWITCH_ENGAGE, Permission.AUDIT_READ):
        with pytest.raises(PermissionDenied, match="actor has no role"):
            require_ops_permission(session, OpsContext("mallory"), permission)
        with pytest.raises(PermissionDenied):
            require_ops_permission(session, OpsContext("mallory", tenant="acme"), permission)
    # Inside its own tenant the binding works as any tenant binding does.
    ctx = OpsContext("mallory", tenant="platform")
    assert require_ops_permission(session, ctx, Permission.AUDIT_READ).allowed
    with tenant_scope("platform"):
        assert [e.outcome for e in audit.events()] == ["deny", "allow"]


@pytest.mark.parametrize("text", ["@platform", str(PLATFORM_SCOPE), "platform "])
def test_the_platform_scope_cannot_be_named_as_text(text: str) -> None:
    from pytest_reliability.errors import InvalidTenant

    with pytest.raises(InvalidTenant), tenant_scope(text):
        pass
    with pytest.raises(InvalidTenant):
        AuthorizationEngine().grant("mallory", "ops_admin", tenant=text)
    with pytest.raises(InvalidTenant):
        OpsContext("mallory", tenant=text)
    with tenant_scope(PLATFORM_SCOPE) as scope:
        assert scope is PLATFORM_SCOPE
