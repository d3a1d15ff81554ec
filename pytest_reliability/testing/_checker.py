"""The idempotency property check behind the ``idempotency_check`` fixture.

:class:`IdempotencyChecker` takes a handler, a key function and an effect counter, delivers
Hypothesis-generated request sequences (``pytest_reliability.strategies.request_sequences``) and
asserts, for every key: at most one effect; exactly one when any delivery was acknowledged; every
acknowledged response equal to the first. A violation fails with the shrunk, minimal sequence.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from pytest_reliability.errors import IdempotencyInProgress, LeaseLost
from pytest_reliability.idempotency._crash import SimulatedCrash, SimulatedFailure, scheduled_fault
from pytest_reliability.testing._sequences import Delivery, RequestSequence

__all__ = ["CheckStats", "IdempotencyChecker", "exactly_once_violation"]


@final
@dataclass(slots=True)
class CheckStats:
    """What a check did, for the reliability report."""

    examples: int = 0
    requests: int = 0
    keys: int = 0
    duplicates_suppressed: int = 0
    replays: int = 0
    effects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_facts(self) -> dict[str, int]:
        """The counters under the report's ``idempotency`` section names."""
        return {
            "examples": self.examples,
            "requests": self.requests,
            "keys": self.keys,
            "duplicates_suppressed": self.duplicates_suppressed,
            "replays": self.replays,
            "effects": self.effects,
        }


def exactly_once_violation(effects: int, acknowledged: Sequence[Any]) -> str | None:
    """Judge one key's history: what is wrong with it, or ``None`` when it is exactly-once.

    ``effects`` is how many effects the key left in durable state; ``acknowledged`` holds the
    responses its callers were given. More than one effect is a duplicate; an acknowledged key
    without exactly one effect lost an acknowledged effect; acknowledged responses must all
    equal the first. The checker judges every key of every example with this, and so does the
    outage drills' history check.
    """
    if effects > 1:
        return f"{effects} effects"
    if acknowledged and effects != 1:
        return f"{len(acknowledged)} acknowledged deliveries but {effects} effects"
    if any(r != acknowledged[0] for r in acknowledged[1:]):
        return f"replayed responses differ from the first: {list(acknowledged)!r}"
    return None


def _default_request(key: str, body: Any) -> Any:
    return {"key": key, "body": body}


def _default_key(request: Any) -> str:
    return str(request["key"])


# The exceptions a delivery may end with without the handler being wrong: it was refused
# (in flight, fenced off) or it was one of our injected faults. Anything else (a store that is
# down, a corrupt record, a payload mismatch) fails the check: it is not exactly-once behaviour.
_EXPECTED = (SimulatedCrash, SimulatedFailure, IdempotencyInProgress, LeaseLost)


@final
class IdempotencyChecker:
    """Property-check that ``handler`` has exactly-once effects per idempotency key.

    * ``handler(request)`` is the code under test; it may call
      :func:`~pytest_reliability.idempotency.crash_point` between its effect and its
      acknowledgement.
    * ``effects(key)`` counts the effects recorded for ``key`` so far.
    * ``key(request)`` extracts the key (default ``request["key"]``) and ``make_request(key,
      body)`` builds a request (default ``{"key": key, "body": body}``). Keys are unique per
      Hypothesis example, so effects of one example never leak into the next.
    * ``max_examples``, ``max_steps``, ``max_copies`` (concurrent threads) and ``derandomize``
      (default True: the same examples every run) tune the search; ``sequences`` replaces the
      strategy altogether.
    """

    __slots__ = (
        "_effects",
        "_handler",
        "_key",
        "_make",
        "_nonce",
        "_options",
        "_sequences",
        "stats",
    )

    def __init__(
        self,
        handler: Callable[[Any], Any],
        *,
        effects: Callable[[str], int],
        key: Callable[[Any], str] = _default_key,
        make_request: Callable[[str, Any], Any] = _default_request,
        max_examples: int = 50,
        max_steps: int = 8,
        max_copies: int = 4,
        derandomize: bool = True,
        sequences: Any = None,
    ) -> None:
        self._handler = handler
        self._effects = effects
        self._key = key
        self._make = make_request
        self._sequences = sequences
        self._options = {"max_examples": max_examples, "max_steps": max_steps}
        self._options |= {"max_copies": max_copies, "derandomize": int(derandomize)}
        self._nonce = itertools.count()
        self.stats = CheckStats()

    def run(self) -> CheckStats:
        """Run the property; raise AssertionError with the minimal failing sequence."""
        from hypothesis import HealthCheck, Phase, given, settings

        from pytest_reliability import strategies

        sequences = self._sequences or strategies.request_sequences(
            max_steps=self._options["max_steps"], max_copies=self._options["max_copies"]
        )
        run_id = uuid.uuid4().hex[:12]

        @settings(
            max_examples=self._options["max_examples"],
            deadline=None,
            database=None,
            derandomize=bool(self._options["derandomize"]),
            suppress_health_check=list(HealthCheck),
            # The explain phase re-runs the failure many times to annotate lines; the minimal
            # sequence in the message already says what matters.
            phases=[p for p in Phase if p is not Phase.explain],
        )
        @given(sequence=sequences)
        def exactly_once(sequence: RequestSequence) -> None:
            self.check_sequence(sequence, namespace=f"{run_id}-{next(self._nonce)}")

        exactly_once()
        return self.stats

    def check_sequence(self, sequence: RequestSequence, *, namespace: str) -> None:
        """Deliver one sequence and assert the exactly-once properties for each of its keys."""
        requests = [self._make(f"{namespace}/{i}", body) for i, body in enumerate(sequence.bodies)]
        keys = [self._key(r) for r in requests]
        acked: dict[int, list[Any]] = {i: [] for i in range(len(requests))}
        delivered = dict.fromkeys(range(len(requests)), 0)
        for step in sequence.deliveries:
            for response in self._deliver(requests[step.request], step):
                acked[step.request].append(response)
            delivered[step.request] += self._attempts(step)
        with self.stats.lock:
            self.stats.examples += 1
        for i, key in enumerate(keys):
            count = self._effects(key)
            self._record(delivered[i], count, len(acked[i]))
            problem = exactly_once_violation(count, acked[i])
            if problem is not None:
                raise AssertionError(
                    f"idempotency violated for request {i} (key {key!r}): {problem}\n"
                    f"minimal sequence:\n{sequence!r}"
                )

    def _record(self, delivered: int, effects: int, acked: int) -> None:
        with self.stats.lock:
            self.stats.requests += delivered
            self.stats.keys += 1
            self.stats.effects += effects
            self.stats.duplicates_suppressed += max(0, (delivered - 1) - max(0, effects - 1))
            self.stats.replays += max(0, acked - 1)

    @staticmethod
    def _attempts(step: Delivery) -> int:
        if step.kind == "concurrent":
            return step.copies
        return 2 if step.kind == "fail_then_retry" else 1

    def _deliver(self, request: Any, step: Delivery) -> list[Any]:
        if step.kind == "concurrent":
            return self._concurrently(request, step.copies)
        if step.kind == "fail_then_retry":
            self._once(request, SimulatedFailure)
            return self._once(request, None)
        fault = SimulatedCrash if step.kind == "crash" else None
        answered = self._once(request, fault)
        return [] if step.kind == "lost_ack" else answered

    def _once(self, request: Any, fault: type[Exception] | None) -> list[Any]:
        with scheduled_fault(fault) as pending:
            try:
                response = self._handler(request)
            except _EXPECTED:
                return []
            if pending:
                # The handler never reached a crash point: the acknowledgement is what dies.
                return []
            return [response]

    def _concurrently(self, request: Any, copies: int) -> list[Any]:
        barrier = threading.Barrier(copies)
        results: list[Any] = []
        errors: list[BaseException] = []

        def worker() -> None:
            barrier.wait()
            try:
                results.extend(self._once(request, None))
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(worker,))
            for _ in range(copies)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results
