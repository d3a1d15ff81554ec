"""The ops API of abuse protection: read a subject's tier, block or unblock it by hand.

Every call asks the control plane's authorisation first, through an ``authorize(ctx,
permission, target=...)`` callable that raises when the caller may not: in a service that is
``functools.partial(pytest_reliability.ops.require_ops_permission, session)``, which audits the
allow or the deny before the action runs. (The security and ops packages sit side by side on
the modules' floor and never import each other, so the ops side is handed in, not imported.)
There is no default: without an authoriser nothing is reachable (deny by default).
"""

from __future__ import annotations

from typing import Any, Final, Protocol, final

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.security.abuse_protection._model import Decision, subject_label
from pytest_reliability.security.abuse_protection._protection import (
    AbuseProtection,
    SubjectStatus,
)
from pytest_reliability.tenancy import tenant_scope

__all__ = [
    "PERMISSION_BLOCK",
    "PERMISSION_READ",
    "PERMISSION_UNBLOCK",
    "AbuseOps",
    "OpsAuthorizer",
]

PERMISSION_READ: Final = "ops.abuse.read"
"""See a subject's tier, block end and offenses (``ops.Permission.ABUSE_READ``)."""
PERMISSION_BLOCK: Final = "ops.abuse.block"
"""Block a subject by hand (``ops.Permission.ABUSE_BLOCK``)."""
PERMISSION_UNBLOCK: Final = "ops.abuse.unblock"
"""Lift a subject's tier by hand (``ops.Permission.ABUSE_UNBLOCK``)."""


class OpsAuthorizer(Protocol):
    """Raises (``PermissionDenied``) unless ``ctx`` holds ``permission``; audits either way."""

    def __call__(self, ctx: Any, permission: str, *, target: str = ...) -> object:
        """Allow or raise."""
        ...


@final
class AbuseOps:
    """Hand operations on an :class:`AbuseProtection`, each authorised first.

    ``ctx`` is the control plane's ``OpsContext``: its ``actor`` is recorded on the audit
    events, its ``tenant`` is the tenant acted in.
    """

    __slots__ = ("_authorize", "protection")

    def __init__(self, protection: AbuseProtection, authorize: OpsAuthorizer) -> None:
        if not callable(authorize):
            raise ConfigurationError(
                "AbuseOps needs an authorize callable, e.g. "
                "functools.partial(require_ops_permission, session) (deny by default)"
            )
        self.protection = protection
        self._authorize = authorize

    def _allow(self, ctx: Any, permission: str, subject: str) -> tuple[str, str]:
        self._authorize(ctx, permission, target=f"abuse:{subject_label(subject)}")
        return str(ctx.actor), str(ctx.tenant)

    def status(self, ctx: Any, subject: str) -> SubjectStatus:
        """The subject's tier in ``ctx.tenant`` (needs ``ops.abuse.read``)."""
        _, tenant = self._allow(ctx, PERMISSION_READ, subject)
        with tenant_scope(tenant):
            return self.protection.status(subject)

    def block(self, ctx: Any, subject: str, duration: float, *, reason: str) -> Decision:
        """Block ``subject`` for ``duration`` seconds (needs ``ops.abuse.block``)."""
        actor, tenant = self._allow(ctx, PERMISSION_BLOCK, subject)
        with tenant_scope(tenant):
            return self.protection.block(subject, duration, reason=reason, actor=actor)

    def unblock(self, ctx: Any, subject: str, *, reason: str) -> Decision:
        """Return ``subject`` to NORMAL (needs ``ops.abuse.unblock``)."""
        actor, tenant = self._allow(ctx, PERMISSION_UNBLOCK, subject)
        with tenant_scope(tenant):
            return self.protection.unblock(subject, reason=reason, actor=actor)
