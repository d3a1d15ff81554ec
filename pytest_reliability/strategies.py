"""Hypothesis strategies for idempotency property tests.

``request_sequences()`` is what :class:`~pytest_reliability.testing.IdempotencyChecker` and the
``idempotency_check`` fixture draw from: a few distinct requests and a list of deliveries mixing
duplicates, lost acknowledgements, crashes between effect and acknowledgement, retries after a
failure and concurrent deliveries. Shrinking removes steps and simplifies kinds toward plain
``deliver``, so a failure reads as the shortest script that breaks the handler.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

from pytest_reliability.idempotency._model import KEY_MAX_LENGTH
from pytest_reliability.testing._sequences import DELIVERY_KINDS, Delivery, RequestSequence

__all__ = ["deliveries", "idempotency_keys", "payloads", "request_sequences"]

_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def idempotency_keys(*, max_size: int = KEY_MAX_LENGTH) -> st.SearchStrategy[str]:
    """Valid idempotency keys: 1 to ``max_size`` printable ASCII characters."""
    return st.text(alphabet=_PRINTABLE, min_size=1, max_size=max_size)


@functools.cache
def payloads() -> st.SearchStrategy[Any]:
    """Small JSON request bodies (objects of scalars, as APIs and webhooks send)."""
    scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=12)
    return st.dictionaries(
        st.text(alphabet="abcdefgh", min_size=1, max_size=6), scalars, max_size=4
    )


# Strategies are values: building them once per shape keeps drawing cheap inside composites.
@functools.cache
def deliveries(
    requests: int, *, max_copies: int = 4, kinds: tuple[str, ...] = DELIVERY_KINDS
) -> st.SearchStrategy[Delivery]:
    """One delivery of a request numbered below ``requests``, in one of ``kinds``."""
    allowed = [k for k in DELIVERY_KINDS if k in kinds]
    return st.builds(
        Delivery,
        request=st.integers(0, requests - 1),
        kind=st.sampled_from(allowed),
        copies=st.integers(2, max(2, max_copies)),
    )


@st.composite
def request_sequences(
    draw: st.DrawFn,
    *,
    max_requests: int = 3,
    max_steps: int = 8,
    max_copies: int = 4,
    bodies: st.SearchStrategy[Any] | None = None,
    kinds: tuple[str, ...] = DELIVERY_KINDS,
) -> RequestSequence:
    """Up to ``max_requests`` distinct requests and up to ``max_steps`` deliveries of them.

    Every sequence has at least one duplicate delivery, since a sequence without one cannot
    show a violation.
    """
    body = bodies if bodies is not None else payloads()
    drawn = draw(st.lists(body, min_size=1, max_size=max_requests))
    steps = draw(
        st.lists(
            deliveries(len(drawn), max_copies=max_copies, kinds=kinds),
            min_size=1,
            max_size=max(2, max_steps),
        )
    )
    repeats = {"concurrent", "fail_then_retry"}
    if len({d.request for d in steps}) == len(steps) and not repeats & {d.kind for d in steps}:
        steps.append(Delivery(steps[0].request))
    return RequestSequence(tuple(drawn), tuple(steps))
