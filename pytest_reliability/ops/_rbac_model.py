"""The permission registry and the built-in roles of the ops control plane."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, final

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.tenancy import PLATFORM_SCOPE, PlatformScope

Scope = Literal["platform", "tenant"]

PLATFORM_TENANT: PlatformScope = PLATFORM_SCOPE
"""The scope of platform-wide operations (kill switches, degradation) and of their audit chain.

It is :data:`pytest_reliability.tenancy.PLATFORM_SCOPE`, which no tenant id can name: a binding
in tenant ``"platform"`` is an ordinary tenant binding and never grants platform permissions.
"""

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class Permission(StrEnum):
    """The built-in ops permissions (values are the registry names)."""

    KILL_SWITCH_READ = "ops.kill_switch.read"
    KILL_SWITCH_ENGAGE = "ops.kill_switch.engage"
    KILL_SWITCH_RELEASE = "ops.kill_switch.release"
    HEALTH_READ = "ops.health.read"
    READINESS_READ = "ops.readiness.read"
    DEGRADATION_READ = "ops.degradation.read"
    DEGRADATION_SET = "ops.degradation.set"
    AUDIT_READ = "ops.audit.read"
    SLO_READ = "ops.slo.read"
    BACKUP_CREATE = "ops.backup.create"
    BACKUP_READ = "ops.backup.read"
    BACKUP_PRUNE = "ops.backup.prune"
    ABUSE_READ = "ops.abuse.read"
    ABUSE_BLOCK = "ops.abuse.block"
    ABUSE_UNBLOCK = "ops.abuse.unblock"


@final
@dataclass(frozen=True, slots=True)
class PermissionSpec:
    """A registered permission: its dotted ``name`` and whether it is platform or tenant scoped."""

    name: str
    scope: Scope
    description: str = ""


_lock = threading.Lock()
_registry: dict[str, PermissionSpec] = {
    Permission.KILL_SWITCH_READ: PermissionSpec(
        Permission.KILL_SWITCH_READ, "platform", "see kill switch states, reasons and actors"
    ),
    Permission.KILL_SWITCH_ENGAGE: PermissionSpec(
        Permission.KILL_SWITCH_ENGAGE, "platform", "engage a kill switch"
    ),
    Permission.KILL_SWITCH_RELEASE: PermissionSpec(
        Permission.KILL_SWITCH_RELEASE, "platform", "release a kill switch"
    ),
    Permission.HEALTH_READ: PermissionSpec(
        Permission.HEALTH_READ, "platform", "see the detailed health snapshot"
    ),
    Permission.READINESS_READ: PermissionSpec(
        Permission.READINESS_READ, "platform", "run readiness gates on demand"
    ),
    Permission.DEGRADATION_READ: PermissionSpec(
        Permission.DEGRADATION_READ, "platform", "see the degradation mode and its reason"
    ),
    Permission.DEGRADATION_SET: PermissionSpec(
        Permission.DEGRADATION_SET, "platform", "change the degradation mode"
    ),
    Permission.AUDIT_READ: PermissionSpec(
        Permission.AUDIT_READ, "tenant", "read one tenant's audit events"
    ),
    Permission.SLO_READ: PermissionSpec(
        Permission.SLO_READ, "platform", "see SLO status: error budget, burn rates, alerts"
    ),
    Permission.BACKUP_CREATE: PermissionSpec(
        Permission.BACKUP_CREATE, "platform", "take a backup of the database"
    ),
    Permission.BACKUP_READ: PermissionSpec(
        Permission.BACKUP_READ, "platform", "list, validate and drill backups"
    ),
    Permission.BACKUP_PRUNE: PermissionSpec(
        Permission.BACKUP_PRUNE, "platform", "delete backups past the retention policy"
    ),
    # Abuse protection: per tenant, so a tenant's admin handles the abusers of their tenant.
    Permission.ABUSE_READ: PermissionSpec(
        Permission.ABUSE_READ, "tenant", "see a subject's abuse tier, block end and offenses"
    ),
    Permission.ABUSE_BLOCK: PermissionSpec(
        Permission.ABUSE_BLOCK, "tenant", "block a subject by hand"
    ),
    Permission.ABUSE_UNBLOCK: PermissionSpec(
        Permission.ABUSE_UNBLOCK, "tenant", "lift a subject's tier by hand"
    ),
}


def register_permission(name: str, *, scope: Scope, description: str = "") -> PermissionSpec:
    """Register a repository's own permission (dotted lowercase, e.g. ``ops.cache.flush``).

    Registering the same name twice with the same scope is a no-op; another scope is a
    :class:`ConfigurationError`.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ConfigurationError(f"permission name {name!r} must be dotted lowercase words")
    if scope not in ("platform", "tenant"):
        raise ConfigurationError(f"permission scope {scope!r} must be 'platform' or 'tenant'")
    spec = PermissionSpec(name, scope, description)
    with _lock:
        existing = _registry.get(name)
        if existing is not None:
            if existing.scope != scope:
                raise ConfigurationError(
                    f"permission {name!r} is already registered with scope {existing.scope!r}"
                )
            return existing
        _registry[name] = spec
    return spec


def resolve_permission(permission: str | Permission) -> PermissionSpec:
    """Return the registered spec of ``permission``; unknown is a :class:`ConfigurationError`."""
    with _lock:
        spec = _registry.get(str(permission))
    if spec is None:
        raise ConfigurationError(f"unknown ops permission {str(permission)!r}")
    return spec


def known_permissions() -> tuple[PermissionSpec, ...]:
    """Return every registered permission, sorted by name."""
    with _lock:
        return tuple(sorted(_registry.values(), key=lambda s: s.name))


_READS = (
    Permission.KILL_SWITCH_READ,
    Permission.HEALTH_READ,
    Permission.READINESS_READ,
    Permission.DEGRADATION_READ,
    Permission.SLO_READ,
    Permission.ABUSE_READ,
)

BUILTIN_ROLES: dict[str, tuple[Permission, ...]] = {
    "ops_viewer": _READS,
    "ops_operator": (
        *_READS,
        Permission.KILL_SWITCH_ENGAGE,
        Permission.KILL_SWITCH_RELEASE,
        Permission.DEGRADATION_SET,
        Permission.ABUSE_BLOCK,
        Permission.ABUSE_UNBLOCK,
    ),
    "ops_admin": tuple(Permission),
}
"""The roles every :class:`~pytest_reliability.ops.rbac.AuthorizationEngine` starts with."""
