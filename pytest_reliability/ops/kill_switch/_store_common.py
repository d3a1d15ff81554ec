"""What the shared kill switch stores (SQL and Redis) have in common: namespaces, listen pacing."""

from __future__ import annotations

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.ops._tables import NAMESPACE_MAX

LISTEN_TIMEOUT = 0.25
"""Seconds a listener waits for one notification before checking whether to stop."""
RECONNECT_DELAY = 0.2
"""Seconds a listener pauses after its connection broke, before reconnecting."""


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is 1..64 characters of ``A-Za-z0-9._:-``."""
    if (
        not isinstance(namespace, str)
        or not 0 < len(namespace) <= NAMESPACE_MAX
        or not all(c.isascii() and (c.isalnum() or c in "._:-") for c in namespace)
    ):
        raise ConfigurationError(
            f"kill switch namespace {namespace!r} must be 1-64 [A-Za-z0-9._:-]"
        )
    return namespace
