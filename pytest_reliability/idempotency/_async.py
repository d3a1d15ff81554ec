"""asyncio and decorators on top of the engine.

In asyncio the store's blocking calls run in worker threads (:func:`asyncio.to_thread`, which
carries the tenant context along) while the handler coroutine runs on the event loop. The
handler's local effects that must commit with the record go through ``attempt.defer(fn)``: they
run inside the completing transaction, in that thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pytest_reliability.errors import LeaseLost
from pytest_reliability.idempotency._attempt import Attempt, attempt_scope

if TYPE_CHECKING:
    from pytest_reliability.idempotency._engine import IdempotencyEngine
    from pytest_reliability.idempotency._model import Outcome

__all__ = ["idempotent", "run_async"]

P = ParamSpec("P")
R = TypeVar("R")


async def run_async(
    engine: IdempotencyEngine,
    *,
    operation: str,
    key: str,
    payload: Any,
    handler: Callable[[Attempt], Awaitable[Any]],
    fingerprint_of: Callable[[Any], Any] | None = None,
) -> Outcome:
    """The asyncio twin of :meth:`IdempotencyEngine.run`: ``await handler(attempt)`` runs once."""
    scope, fp = engine.prepare(operation, key, payload, fingerprint_of)
    claim = await asyncio.to_thread(engine.acquire, scope, fp)
    if not claim.acquired:
        replay = await asyncio.to_thread(engine.replay, scope, claim)
        return replay.outcome()
    attempt = Attempt(scope, replayed=False, fence=claim.fence, takeover=claim.takeover)
    try:
        with attempt_scope(attempt):
            attempt.complete(await handler(attempt))
        await asyncio.to_thread(engine.complete_deferred, scope, claim.token, attempt)
    except LeaseLost:
        raise
    except Exception as exc:
        await asyncio.to_thread(engine.settle, scope, claim.token, exc)
        raise
    except BaseException as exc:
        # Cancelled: awaiting again could be cancelled too, so release the key synchronously.
        engine.settle(scope, claim.token, exc)
        raise
    return attempt.outcome()


def idempotent(
    engine: IdempotencyEngine,
    operation: str,
    *,
    key: Callable[..., str],
    payload: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or ``async def``) to run once per key.

    ``key(*args, **kwargs)`` gives the idempotency key and ``payload(*args, **kwargs)`` the
    fingerprinted payload (default: ``{"args": [...], "kwargs": {...}}``, which must be JSON).
    The decorated function returns the response, replayed or fresh; inside it,
    :func:`current_attempt` gives the attempt (and its SQL connection).
    """

    def fingerprinted(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if payload is not None:
            return payload(*args, **kwargs)
        return {"args": list(args), "kwargs": kwargs}

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async def handler(_attempt: Attempt) -> Any:
                    return await fn(*args, **kwargs)

                outcome = await run_async(
                    engine,
                    operation=operation,
                    key=key(*args, **kwargs),
                    payload=fingerprinted(args, kwargs),
                    handler=handler,
                )
                return outcome.response

            return async_wrapper  # type: ignore[return-value]  # same signature, awaited

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            outcome = engine.run(
                operation=operation,
                key=key(*args, **kwargs),
                payload=fingerprinted(args, kwargs),
                handler=lambda _attempt: fn(*args, **kwargs),
            )
            return outcome.response  # type: ignore[no-any-return]  # the stored JSON value

        return wrapper

    return decorate
