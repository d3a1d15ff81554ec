"""A checkout service with a retry loop, broken the way production services break.

The service charges an order through a payment provider. It connects to the provider's primary
endpoint, asks for the charge (the effect) and reads the answer. It retries: after a timeout on
the same endpoint (sending the same idempotency key, so the provider does not charge twice), and
after a refused connection on the secondary endpoint. The bug: the secondary path sends no
idempotency key. One fault alone never shows it (a timeout alone is retried under the key; a
refusal alone charges once on the secondary). Only two faults together do: the primary refuses
the connection, then the secondary's answer times out after the charge landed, and the retry
charges the customer again.

Everything is in memory and takes microseconds, so a property test explores thousands of
schedules in a second. ``TARGETS`` declares where schedules may fault and with what; the dotted
paths follow this module's name, so the file works wherever it is imported from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pytest_reliability.ops.chaos_engine import FaultTarget


class PaymentFailed(Exception):
    """Every attempt failed; the customer was told the payment did not go through."""


@dataclass
class Provider:
    """The payment provider: charges land in ``charges``; a known idempotency key is answered
    with the charge it made before."""

    charges: list[tuple[str, int]] = field(default_factory=list)
    by_key: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def charge(self, order: str, amount: int, key: str | None) -> str:
        """Charge ``amount`` for ``order``; with a known ``key``, return the earlier charge."""
        with self.lock:
            if key is not None and key in self.by_key:
                return self.by_key[key]
            self.charges.append((order, amount))
            charge_id = f"ch_{len(self.charges)}"
            if key is not None:
                self.by_key[key] = charge_id
            return charge_id

    def charged(self, order: str) -> int:
        """How many times ``order`` was charged."""
        with self.lock:
            return sum(1 for o, _ in self.charges if o == order)


def connect(endpoint: str) -> None:
    """Open a connection to ``endpoint`` (a refused connection fails before any effect)."""


def read_answer(endpoint: str, charge_id: str) -> str:
    """Read the provider's answer (a timeout here comes after the effect)."""
    return charge_id


def audit(order: str, charge_id: str) -> None:
    """Write the payment to the service's own log (a fault here changes nothing for the bug)."""


class CheckoutService:
    """Charges an order at most once... unless ``fixed`` is false and two faults coincide."""

    def __init__(self, provider: Provider, *, fixed: bool = False, attempts: int = 3) -> None:
        self.provider = provider
        self.fixed = fixed
        self.attempts = attempts

    def pay(self, order: str, amount: int) -> str:
        """Charge ``order``; return the charge id, or raise :class:`PaymentFailed`."""
        endpoint = "primary"
        for _ in range(self.attempts):
            try:
                connect(endpoint)
                # The bug: the secondary endpoint is called without the idempotency key.
                key = order if endpoint == "primary" or self.fixed else None
                charge_id = self.provider.charge(order, amount, key)
                answer = read_answer(endpoint, charge_id)
            except ConnectionError:
                endpoint = "secondary"
                continue
            except TimeoutError:
                continue
            audit(order, answer)
            return answer
        raise PaymentFailed(order)


def targets() -> list[FaultTarget]:
    """Where schedules may fault the service, and with what.

    Latencies are 0 s: the service has no deadline of its own, so a delay would change nothing
    but the test's wall time; the latency faults stay in the search as the noise shrinking must
    remove.
    """
    here = __name__
    return [
        FaultTarget(
            f"{here}.connect",
            kinds=("latency", "exception"),
            errors=(ConnectionRefusedError,),
            max_seconds=0.0,
            max_call=2,
        ),
        FaultTarget(
            f"{here}.read_answer", kinds=("latency", "timeout"), max_seconds=0.0, max_call=2
        ),
    ]
