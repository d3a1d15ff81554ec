"""RBAC for the ops control plane: roles, permissions, tenant scoping, deny by default.

Every ops entry point that changes or reveals state calls :func:`require_ops_permission`, which
asks an :class:`AuthorizationEngine` and appends the decision, allow or deny, to the audit log.

* A **permission** is a registered name (:class:`Permission` holds the built-in ones; a repository
  adds its own with :func:`register_permission`). A permission is either ``platform`` scoped (it
  acts on every tenant at once, like a kill switch) or ``tenant`` scoped.
* A **role** is a named set of permissions. Naming an unknown permission in a role is a
  :class:`~pytest_reliability.errors.ConfigurationError` at definition time.
* A **binding** gives an actor a role, either in one tenant or on the platform (every tenant).
  A tenant binding never grants a platform-scoped permission: a tenant's admin cannot engage a kill
  switch that stops every other tenant.
* Anything not granted is denied: unknown actors, actors without a role, unknown permissions.

``session`` in :func:`require_ops_permission` is an :class:`OpsSession`: the control plane's
dependencies (authorisation engine, audit sink, database engine). ``ctx`` is an
:class:`OpsContext`: who asks (an authenticated actor), in which tenant, with which extra roles
their credentials carry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, final

from pytest_reliability._lazy import deprecated_aliases
from pytest_reliability.errors import ConfigurationError, InvalidInput, PermissionDenied
from pytest_reliability.ops._rbac_model import (
    BUILTIN_ROLES,
    PLATFORM_TENANT,
    Permission,
    PermissionSpec,
    known_permissions,
    register_permission,
    resolve_permission,
)
from pytest_reliability.ops._rbac_model import Scope as PermissionScope
from pytest_reliability.protocols import AuditSink
from pytest_reliability.tenancy import tenant_scope, validate_tenant_id

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "BUILTIN_ROLES",
    "PLATFORM_TENANT",
    "AuthorizationEngine",
    "Decision",
    "OpsContext",
    "OpsSession",
    "Permission",
    "PermissionScope",
    "PermissionSpec",
    "known_permissions",
    "register_permission",
    "require_ops_permission",
]

_ACTOR_RE = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_ROLE_RE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")

PERMISSION_AUDIT_ACTION = "ops.permission"


@final
@dataclass(frozen=True, slots=True)
class OpsContext:
    """Who performs an ops action: ``actor`` (authenticated upstream), ``tenant``, extra ``roles``.

    ``tenant`` defaults to :data:`PLATFORM_TENANT`, the audit chain of platform-wide operations.
    ``roles`` are roles the caller's credentials carry; they apply in ``tenant`` only.
    """

    actor: str
    tenant: str = PLATFORM_TENANT
    roles: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not isinstance(self.actor, str) or _ACTOR_RE.fullmatch(self.actor) is None:
            raise InvalidInput(f"ops actor {self.actor!r} must be 1-200 printable characters")
        validate_tenant_id(self.tenant)
        object.__setattr__(self, "roles", frozenset(self.roles))


@final
@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorisation question, with the reason in words."""

    allowed: bool
    permission: str
    actor: str
    tenant: str
    reason: str
    roles: tuple[str, ...] = ()


@final
class AuthorizationEngine:
    """Roles and bindings; answers "may this actor do this here?" and denies by default.

    Thread-safe. ``roles`` maps role names to permission names (the built-in
    ``ops_viewer``/``ops_operator``/``ops_admin`` are always defined unless overridden).
    """

    __slots__ = ("_bindings", "_lock", "_roles")

    def __init__(self, roles: Mapping[str, Iterable[str | Permission]] | None = None) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, frozenset[str]] = {}
        self._bindings: dict[tuple[str, str], set[str]] = {}
        for name, perms in {**BUILTIN_ROLES, **(roles or {})}.items():
            self.define_role(name, perms)

    def define_role(self, name: str, permissions: Iterable[str | Permission]) -> None:
        """Define (or redefine) role ``name``; an unknown permission is a ConfigurationError."""
        if not isinstance(name, str) or _ROLE_RE.fullmatch(name) is None:
            raise ConfigurationError(f"role name {name!r} must match {_ROLE_RE.pattern}")
        resolved = frozenset(resolve_permission(p).name for p in permissions)
        with self._lock:
            self._roles[name] = resolved

    def roles(self) -> dict[str, frozenset[str]]:
        """Return every role and its permission names."""
        with self._lock:
            return dict(self._roles)

    def grant(self, actor: str, role: str, *, tenant: str = PLATFORM_TENANT) -> None:
        """Bind ``role`` to ``actor`` in ``tenant`` (:data:`PLATFORM_TENANT`: every tenant)."""
        OpsContext(actor, validate_tenant_id(tenant))  # validates the actor
        with self._lock:
            if role not in self._roles:
                raise ConfigurationError(f"unknown role {role!r}; define it first")
            self._bindings.setdefault((actor, tenant), set()).add(role)

    def revoke(self, actor: str, role: str, *, tenant: str = PLATFORM_TENANT) -> None:
        """Remove a binding made by :meth:`grant`; a missing binding is not an error."""
        with self._lock:
            self._bindings.get((actor, tenant), set()).discard(role)

    def decide(self, ctx: OpsContext, permission: str | Permission) -> Decision:
        """Answer whether ``ctx`` holds ``permission``; never raises for a denial."""
        name = permission.value if isinstance(permission, Permission) else str(permission)
        try:
            spec = resolve_permission(permission)
        except ConfigurationError:
            return Decision(False, name, ctx.actor, ctx.tenant, "unknown permission")
        with self._lock:
            platform = set(self._bindings.get((ctx.actor, PLATFORM_TENANT), ()))
            if ctx.tenant == PLATFORM_TENANT:
                platform |= ctx.roles
                local: set[str] = set()
            else:
                local = set(self._bindings.get((ctx.actor, ctx.tenant), ())) | ctx.roles
            unknown = sorted(r for r in ctx.roles if r not in self._roles)
            held = platform | local
            granting = sorted(
                r
                for r in held
                if spec.name in self._roles.get(r, ()) and (spec.scope == "tenant" or r in platform)
            )
        roles = tuple(sorted(held))
        if granting:
            reason = f"granted by role {granting[0]}"
            return Decision(True, spec.name, ctx.actor, ctx.tenant, reason, roles)
        if not held:
            reason = "actor has no role"
        elif unknown and not (held - set(unknown)):
            reason = f"unknown role(s) {', '.join(unknown)}"
        elif spec.scope == "platform" and any(spec.name in self._roles.get(r, ()) for r in local):
            reason = "a tenant binding does not grant a platform permission"
        else:
            reason = "no role grants it"
        return Decision(False, spec.name, ctx.actor, ctx.tenant, reason, roles)


@final
@dataclass(frozen=True, slots=True)
class OpsSession:
    """What the control plane works with: authorisation, the audit sink, optionally a database.

    ``engine`` is the SQLAlchemy engine health and readiness ping; ``kill_switches`` and
    ``degradation`` are the instances health and readiness report on (any may be ``None``).
    """

    authz: AuthorizationEngine
    audit: AuditSink
    engine: Engine | None = None
    kill_switches: Any = None
    degradation: Any = None
    gates: tuple[Any, ...] = ()


def require_ops_permission(
    session: OpsSession | AuthorizationEngine,
    ctx: OpsContext,
    permission: str | Permission,
    *,
    audit: AuditSink | None = None,
    target: str = "ops",
) -> Decision:
    """Allow ``ctx`` to use ``permission`` or raise :class:`PermissionDenied`; audit either way.

    ``session`` is an :class:`OpsSession` (its ``audit`` sink is used), or a bare engine with
    ``audit`` given. The decision is appended as ``ops.permission`` in ``ctx.tenant``'s chain,
    before the action runs, so a denial leaves its trace even if nothing else happens.
    """
    authz = session.authz if isinstance(session, OpsSession) else session
    sink = audit if audit is not None or not isinstance(session, OpsSession) else session.audit
    if sink is None:
        raise ConfigurationError("require_ops_permission needs an audit sink (fail closed)")
    if not isinstance(ctx, OpsContext):
        raise PermissionDenied(
            "ops actions need an OpsContext", permission=str(permission), actor=None
        )
    decision = authz.decide(ctx, permission)
    details: dict[str, Any] = {"permission": decision.permission, "reason": decision.reason}
    outcome: Literal["allow", "deny"] = "allow" if decision.allowed else "deny"
    with tenant_scope(ctx.tenant):
        sink.append(
            PERMISSION_AUDIT_ACTION,
            actor=ctx.actor,
            target=target,
            outcome=outcome,
            details=details,
        )
    if not decision.allowed:
        raise PermissionDenied(
            f"{ctx.actor!r} may not {decision.permission} in {ctx.tenant!r}: {decision.reason}",
            permission=decision.permission,
            actor=ctx.actor,
        )
    return decision


# ``Scope`` clashed with idempotency.Scope in the ops package; the old name warns for one release.
__getattr__ = deprecated_aliases(__name__, {"Scope": "PermissionScope"})
