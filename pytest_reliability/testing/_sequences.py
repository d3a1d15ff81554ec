"""Request sequences: what the idempotency property tests deliver, and in what way.

Plain values with a readable ``repr``, so a shrunk failing sequence prints as a short script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, final

__all__ = ["DELIVERY_KINDS", "Delivery", "DeliveryKind", "RequestSequence"]

DeliveryKind = Literal["deliver", "lost_ack", "crash", "fail_then_retry", "concurrent"]
DELIVERY_KINDS: Final[tuple[DeliveryKind, ...]] = (
    "deliver",
    "lost_ack",
    "crash",
    "fail_then_retry",
    "concurrent",
)
"""How a request is delivered:

* ``deliver``: once; the response is acknowledged.
* ``lost_ack``: once; the handler finishes but the response never reaches the client.
* ``crash``: the handler dies between its effect and the acknowledgement: the next call it makes
  to :func:`~pytest_reliability.idempotency.crash_point` raises
  :class:`~pytest_reliability.idempotency.SimulatedCrash` (after it returns, if it never calls).
* ``fail_then_retry``: the first try fails with the retryable
  :class:`~pytest_reliability.idempotency.SimulatedFailure` at the crash point; the client retries
  at once.
* ``concurrent``: ``copies`` threads deliver the request at the same moment.
"""


@final
@dataclass(frozen=True, slots=True)
class Delivery:
    """One step of a sequence: deliver request number ``request`` in the way ``kind`` says."""

    request: int
    kind: DeliveryKind = "deliver"
    copies: int = 1

    def __repr__(self) -> str:
        extra = f" x{self.copies}" if self.kind == "concurrent" else ""
        return f"{self.kind}(request {self.request}{extra})"


@final
@dataclass(frozen=True, slots=True)
class RequestSequence:
    """Distinct requests (``bodies[i]`` is request ``i``, each its own key) and their deliveries."""

    bodies: tuple[Any, ...]
    deliveries: tuple[Delivery, ...]

    def __repr__(self) -> str:
        lines = [f"RequestSequence({len(self.bodies)} requests, {len(self.deliveries)} steps):"]
        lines += [f"  request {i}: {body!r}" for i, body in enumerate(self.bodies)]
        lines += [f"  {n + 1}. {d!r}" for n, d in enumerate(self.deliveries)]
        return "\n".join(lines)
