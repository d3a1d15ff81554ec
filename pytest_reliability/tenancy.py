"""The tenant context: who every persisted row and audit event belongs to.

The tenant lives in a :mod:`contextvars` variable, so it follows the code through threads started
with a copied context (``contextvars.copy_context().run``) and through asyncio tasks, which copy
the context when they are created. There is no default tenant: code that needs one and finds none
raises :class:`~pytest_reliability.errors.TenantRequired` (fail closed).

Tenant ids are 1 to 64 characters from ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit.
That set is safe in log lines, metric labels, Redis keys and SQL identifiers-as-values alike.

Platform-wide operations (kill switches, degradation) run in :data:`PLATFORM_SCOPE`, which no
tenant id can name: its text ``@platform`` is outside the tenant character set, and only
a :class:`PlatformScope` object is accepted for it, so a tenant id taken from a request (always a
plain ``str``) can never enter the platform scope. ``"platform"`` is an ordinary tenant id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, final

from pytest_reliability.errors import InvalidTenant, TenantRequired

__all__ = [
    "PLATFORM_SCOPE",
    "TENANT_ID_MAX_LENGTH",
    "PlatformScope",
    "current_tenant",
    "current_tenant_or_none",
    "tenant_scope",
    "validate_tenant_id",
]

TENANT_ID_MAX_LENGTH = 64
"""The longest tenant id accepted."""

_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@final
class PlatformScope(str):
    """The type of :data:`PLATFORM_SCOPE`: a ``str`` (it is stored as the audit chain's tenant
    id) that the tenant validation accepts only as this type, never as text."""

    __slots__ = ()


PLATFORM_SCOPE: Final = PlatformScope("@platform")
"""The scope of platform-wide operations; its audit chain is stored under ``@platform``."""
_current: ContextVar[str | None] = ContextVar("pytest_reliability_tenant", default=None)


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is a valid tenant id, else raise :class:`InvalidTenant`.

    :data:`PLATFORM_SCOPE` itself passes (the platform's own scope); its text does not.
    """
    if isinstance(tenant_id, PlatformScope):
        # Only code makes one (a copy of PLATFORM_SCOPE included); request data is plain str.
        return PLATFORM_SCOPE
    if not isinstance(tenant_id, str):
        raise InvalidTenant(f"tenant id must be a str, not {type(tenant_id).__name__}")
    if not tenant_id:
        raise InvalidTenant("tenant id must not be empty")
    if len(tenant_id) > TENANT_ID_MAX_LENGTH:
        raise InvalidTenant(
            f"tenant id is {len(tenant_id)} characters long; the limit is {TENANT_ID_MAX_LENGTH}"
        )
    if _TENANT_RE.fullmatch(tenant_id) is None:
        raise InvalidTenant(
            f"tenant id {str(tenant_id)!r} has characters outside A-Z a-z 0-9 . _ : - "
            "or does not start with a letter or digit"
            + (
                " (the platform scope is PLATFORM_SCOPE, never text)"
                if tenant_id == PLATFORM_SCOPE
                else ""
            )
        )
    return tenant_id


@contextmanager
def tenant_scope(tenant_id: str) -> Iterator[str]:
    """Set the current tenant for the ``with`` block and restore the outer one on exit.

    >>> with tenant_scope("acme"):
    ...     current_tenant()
    'acme'
    """
    tenant = validate_tenant_id(tenant_id)
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)


def current_tenant() -> str:
    """Return the current tenant id, or raise :class:`TenantRequired` when none is set."""
    tenant = _current.get()
    if tenant is None:
        raise TenantRequired(
            "no tenant in the current context: wrap the call in `with tenant_scope(tenant_id):`"
        )
    return tenant


def current_tenant_or_none() -> str | None:
    """Return the current tenant id, or ``None``; for logging, never for authorisation."""
    return _current.get()
