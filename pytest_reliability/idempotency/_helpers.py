"""Helpers for the three uses the engine was built for: billing, webhooks, mutating API calls.

Each is a thin layer over :meth:`IdempotencyEngine.run` that fixes the operation namespace
(``billing.*``, ``webhooks.*``, ``api.*``) and, for API calls, maps the engine's answers to the
HTTP semantics of the IETF ``Idempotency-Key`` header draft: a missing or malformed key is 400,
the key reused with another payload 422, a request still in flight 409 with ``Retry-After``, a
store that cannot be reached 503; a replay carries ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, final

from pytest_reliability.errors import (
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    IdempotencyUnavailable,
    InvalidIdempotencyKey,
    InvalidInput,
    ReplayedFailure,
)
from pytest_reliability.idempotency._attempt import Attempt
from pytest_reliability.idempotency._engine import IdempotencyEngine
from pytest_reliability.idempotency._model import Outcome

__all__ = ["ApiResponse", "api_operation", "billing_operation", "http_status_for"]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def billing_operation(
    engine: IdempotencyEngine,
    name: str,
    *,
    key: str,
    payload: Any,
    handler: Callable[[Attempt], Any],
) -> Outcome:
    """Run the billing operation ``billing.<name>`` once per key (charges, refunds, invoices).

    On the SQL store, write the ledger rows through ``attempt.connection`` so they commit with
    the record.
    """
    return engine.run(operation=f"billing.{name}", key=key, payload=payload, handler=handler)


def http_status_for(exc: BaseException) -> int | None:
    """Return the HTTP status the engine's error ``exc`` maps to, or None for other errors."""
    if isinstance(exc, InvalidIdempotencyKey):
        return 400
    if isinstance(exc, IdempotencyKeyMismatch):
        return 422
    if isinstance(exc, IdempotencyInProgress):
        return 409
    if isinstance(exc, IdempotencyUnavailable):
        return 503
    if isinstance(exc, InvalidInput):
        return 413 if type(exc).__name__ == "PayloadTooLarge" else 400
    if isinstance(exc, ReplayedFailure):
        return 500
    return None


@final
@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An HTTP answer: status, JSON body and the headers the idempotency layer adds."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


def api_operation(
    engine: IdempotencyEngine,
    *,
    method: str,
    route: str,
    headers: Mapping[str, str],
    body: Any,
    handler: Callable[[Attempt], tuple[int, Any]],
) -> ApiResponse:
    """Run a mutating API call (``POST``, ``PATCH``, ...) once per ``Idempotency-Key`` header.

    ``handler(attempt)`` returns ``(status, body)``; both are stored and replayed. The
    operation is ``api.<METHOD>:<route>`` (use the route template, not the concrete path, so the
    name is stable). Engine errors come back as problem responses, never as exceptions;
    the handler's own errors propagate.
    """
    key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
    operation = f"api.{method.upper()}:{route}"
    if key is None:
        return _problem(400, "missing Idempotency-Key header")

    def stored(attempt: Attempt) -> dict[str, Any]:
        status, answer = handler(attempt)
        return {"status": int(status), "body": answer}

    try:
        outcome = engine.run(operation=operation, key=key, payload=body, handler=stored)
    except (InvalidInput, IdempotencyKeyMismatch, IdempotencyUnavailable) as exc:
        return _problem(http_status_for(exc) or 400, str(exc))
    except IdempotencyInProgress as exc:
        retry = str(max(1, math.ceil(exc.retry_after)))
        return _problem(409, str(exc), {"Retry-After": retry})
    response = outcome.response
    extra = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return ApiResponse(int(response["status"]), response["body"], extra)


def _problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> ApiResponse:
    body = {"type": "about:blank", "status": status, "detail": detail}
    return ApiResponse(
        status, body, {"Content-Type": "application/problem+json", **(headers or {})}
    )
