"""Crash points: where a handler marks the gap between its effect and its acknowledgement.

Production handlers keep the :func:`crash_point` call; it does nothing unless a test tool (the
:class:`~pytest_reliability.testing.IdempotencyChecker`) scheduled a fault for the current context
with :func:`scheduled_fault`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["SimulatedCrash", "SimulatedFailure", "crash_point", "scheduled_fault"]


class SimulatedCrash(Exception):  # named for what it models, like KeyboardInterrupt
    """Raised by :func:`crash_point` when the delivery is scheduled to die there."""


class SimulatedFailure(Exception):  # a retryable fault, not a bug
    """Raised by :func:`crash_point` when the delivery is scheduled to fail and be retried."""


_fault: ContextVar[list[type[Exception]] | None] = ContextVar("reliability_fault", default=None)


def crash_point() -> None:
    """Mark the spot between a handler's effect and its acknowledgement.

    Under the checker, a delivery scheduled to crash or fail raises there (once); elsewhere it
    does nothing, so production handlers may keep the call.
    """
    pending = _fault.get()
    if pending:
        raise pending.pop()("simulated fault between effect and acknowledgement")


@contextmanager
def scheduled_fault(fault: type[Exception] | None) -> Iterator[list[type[Exception]]]:
    """Make the next :func:`crash_point` in this context raise ``fault`` (None: nothing).

    Yields the pending list: still non-empty on exit means no crash point was reached.
    """
    pending: list[type[Exception]] = [fault] if fault is not None else []
    token = _fault.set(pending)
    try:
        yield pending
    finally:
        _fault.reset(token)
