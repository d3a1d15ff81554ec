"""The idempotency engine: exactly-once execution of an operation per (tenant, operation, key).

A delivery claims its key (NEW -> IN_PROGRESS, with a lease and a fencing token), runs the
handler, and completes the record (-> COMPLETED with the response) in the transaction that holds
the handler's local effects. A duplicate replays the stored response; one arriving while the
first is IN_PROGRESS gets :class:`IdempotencyInProgress` (or waits, if configured); the same key
with another payload gets :class:`IdempotencyKeyMismatch`. A worker that crashes leaves a lease
that expires; exactly one other worker takes it over, and the crashed one can no longer complete.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, final

from pytest_reliability.clock import system_clock
from pytest_reliability.errors import (
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    LeaseLost,
    ReplayedFailure,
)
from pytest_reliability.idempotency._async import idempotent, run_async
from pytest_reliability.idempotency._attempt import Attempt, attempt_scope
from pytest_reliability.idempotency._auditing import (
    AUDIT_CONCURRENT_CONFLICT,
    AUDIT_DUPLICATE_SUPPRESSED,
    AUDIT_FINGERPRINT_MISMATCH,
    AUDIT_LEASE_TAKEOVER,
    AUDIT_REPLAY_DETECTED,
    emit,
)
from pytest_reliability.idempotency._model import (
    Claim,
    IdempotencyConfig,
    Outcome,
    Scope,
    State,
    canonical_bytes,
    fingerprint,
    key_hash,
    validate_key,
    validate_operation,
)
from pytest_reliability.idempotency._store import IdempotencyStore, store_from_url
from pytest_reliability.protocols import AuditSink, Clock
from pytest_reliability.tenancy import current_tenant

__all__ = [
    "AUDIT_CONCURRENT_CONFLICT",
    "AUDIT_DUPLICATE_SUPPRESSED",
    "AUDIT_FINGERPRINT_MISMATCH",
    "AUDIT_LEASE_TAKEOVER",
    "AUDIT_REPLAY_DETECTED",
    "IdempotencyEngine",
]


Handler = Callable[[Attempt], Any]
P = ParamSpec("P")
R = TypeVar("R")
_log = logging.getLogger("pytest_reliability.idempotency")


@final
class IdempotencyEngine:
    """Run operations exactly once per (tenant, operation, key) on a shared store.

    Build it with :meth:`from_url` (``sqlite:///...``, ``postgresql://...``, ``redis://...``,
    ``memory://``) or around a store. ``audit`` receives the engine's audit events (None: no
    audit); ``clock`` defaults to the system clock; ``config`` to :class:`IdempotencyConfig`.
    Every call needs a tenant in the context (:func:`~pytest_reliability.tenancy.tenant_scope`).
    """

    __slots__ = ("_audit", "_clock", "config", "store")

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        audit: AuditSink | None = None,
        clock: Clock | None = None,
        config: IdempotencyConfig | None = None,
    ) -> None:
        self.store = store
        self.config = config if config is not None else IdempotencyConfig()
        self._audit = audit
        self._clock: Clock = clock if clock is not None else system_clock

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        audit: AuditSink | None = None,
        clock: Clock | None = None,
        config: IdempotencyConfig | None = None,
        **store_options: Any,
    ) -> IdempotencyEngine:
        """Build the engine on the store the URL names (see :func:`store_from_url`)."""
        return cls(store_from_url(url, **store_options), audit=audit, clock=clock, config=config)

    @property
    def clock(self) -> Clock:
        """The clock leases, retention and webhook tolerance are measured on."""
        return self._clock

    @property
    def audit(self) -> AuditSink | None:
        """The audit sink the engine writes to, if any."""
        return self._audit

    # -- the public calls -------------------------------------------------------------------

    def run(
        self,
        *,
        operation: str,
        key: str,
        payload: Any,
        handler: Handler,
        fingerprint_of: Callable[[Any], Any] | None = None,
    ) -> Outcome:
        """Run ``handler(attempt)`` once for this key and return the :class:`Outcome`.

        The handler's return value (a JSON value) is stored and replayed to every later
        delivery with the same key and payload. ``fingerprint_of(payload)`` chooses the part of
        the payload that must match between deliveries (default: all of it).
        """
        with self.attempt(
            operation=operation, key=key, payload=payload, fingerprint_of=fingerprint_of
        ) as attempt:
            if not attempt.replayed:
                attempt.complete(handler(attempt))
        return attempt.outcome()

    @contextmanager
    def attempt(
        self,
        *,
        operation: str,
        key: str,
        payload: Any,
        fingerprint_of: Callable[[Any], Any] | None = None,
        _replay_action: str = AUDIT_DUPLICATE_SUPPRESSED,
    ) -> Iterator[Attempt]:
        """Claim the key for the ``with`` block; the block does the work when not replayed.

        ``attempt.replayed`` says whether the stored response is already there; otherwise the
        block calls ``attempt.complete(response)`` (exiting without it stores ``None``). An
        exception in the block releases the key or stores the failure (see
        :class:`IdempotencyConfig`) and propagates.
        """
        scope, fp = self.prepare(operation, key, payload, fingerprint_of)
        claim = self._acquire(scope, fp)
        if not claim.acquired:
            yield self.replay(scope, claim, _replay_action)
            return
        attempt = Attempt(scope, replayed=False, fence=claim.fence, takeover=claim.takeover)
        try:
            with self.store.transaction() as handle, attempt_scope(attempt):
                attempt.connection = handle
                yield attempt
                self._complete(scope, claim.token, attempt, handle)
        except LeaseLost:
            raise
        except BaseException as exc:
            self._settle(scope, claim.token, exc)
            raise

    async def run_async(
        self,
        *,
        operation: str,
        key: str,
        payload: Any,
        handler: Callable[[Attempt], Awaitable[Any]],
        fingerprint_of: Callable[[Any], Any] | None = None,
    ) -> Outcome:
        """The asyncio twin of :meth:`run`; ``await handler(attempt)`` runs at most once."""
        return await run_async(
            self,
            operation=operation,
            key=key,
            payload=payload,
            handler=handler,
            fingerprint_of=fingerprint_of,
        )

    def idempotent(
        self,
        operation: str,
        *,
        key: Callable[..., str],
        payload: Callable[..., Any] | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator form of :meth:`run` for sync and ``async def`` functions (see
        :func:`~pytest_reliability.idempotency.idempotent`)."""
        return idempotent(self, operation, key=key, payload=payload)

    def state(self, *, operation: str, key: str) -> State:
        """Return the state of ``key`` for the current tenant (NEW when there is no record)."""
        record = self.store.get(self._scope(operation, key))
        if record is None or record.expires_ms <= self._now_ms():
            return State.NEW
        return record.state

    def purge(self) -> int:
        """Delete every record past its retention period; return how many went."""
        return self.store.purge(self._now_ms())

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()

    # -- the steps -------------------------------------------------------------------------

    def prepare(
        self,
        operation: str,
        key: str,
        payload: Any,
        fingerprint_of: Callable[[Any], Any] | None = None,
    ) -> tuple[Scope, str]:
        """Validate the call and return its scope and request fingerprint."""
        scope = self._scope(operation, key)
        selected = fingerprint_of(payload) if fingerprint_of is not None else payload
        return scope, fingerprint(selected, max_bytes=self.config.max_payload_bytes)

    def _scope(self, operation: str, key: str) -> Scope:
        tenant = current_tenant()
        return Scope(tenant, validate_operation(operation), key_hash(validate_key(key)))

    def _now_ms(self) -> int:
        return int(self._clock.time() * 1000)

    def acquire(self, scope: Scope, fp: str) -> Claim:
        """Claim ``scope``: acquired, or a finished record to replay; raises 422/409."""
        return self._acquire(scope, fp)

    def _acquire(self, scope: Scope, fp: str) -> Claim:
        cfg = self.config
        deadline = self._clock.monotonic() + cfg.wait_seconds
        lease_ms = int(cfg.lease_seconds * 1000)
        retention_ms = int(cfg.retention_seconds * 1000)
        while True:
            now = self._now_ms()
            claim = self.store.claim(
                scope,
                fp,
                # Random, not a generated id: deterministic ids would repeat across processes.
                token=secrets.token_hex(16),
                now_ms=now,
                lease_ms=lease_ms,
                retention_ms=retention_ms,
                on_takeover=lambda handle, fence: self._emit(
                    AUDIT_LEASE_TAKEOVER, scope, "taken_over", {"fence": fence}, handle
                ),
            )
            if claim.acquired:
                return claim
            record = claim.record
            assert record is not None  # a claim that did not acquire carries the record
            if record.fingerprint != fp:
                self._emit(AUDIT_FINGERPRINT_MISMATCH, scope, "rejected", {"http_status": 422})
                raise IdempotencyKeyMismatch(
                    f"idempotency key was used for operation {scope.operation!r} with another "
                    "payload (HTTP 422)"
                )
            if record.state is not State.IN_PROGRESS:
                return claim
            retry_after = max(0.0, (record.lease_expires_ms - now) / 1000)
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                self._emit(
                    AUDIT_CONCURRENT_CONFLICT,
                    scope,
                    "rejected",
                    {"http_status": 409, "retry_after": round(retry_after, 3)},
                )
                raise IdempotencyInProgress(
                    f"a delivery of this key for {scope.operation!r} is in progress (HTTP 409)",
                    retry_after=retry_after,
                )
            self._clock.sleep(min(cfg.poll_seconds, remaining, max(retry_after, 0.001)))

    def replay(
        self, scope: Scope, claim: Claim, action: str = AUDIT_DUPLICATE_SUPPRESSED
    ) -> Attempt:
        """Return the replayed attempt of a finished record (audited as ``action``)."""
        record = claim.record
        assert record is not None
        if record.state is State.FAILED:
            error_type, message = record.failure()
            self._emit(action, scope, "replayed_failure", {"state": "FAILED"})
            raise ReplayedFailure(
                f"the first delivery of this key failed terminally with {error_type}",
                error_type=error_type,
                error_message=message,
            )
        response = record.response_value()
        self._emit(action, scope, "replayed", {"state": "COMPLETED", "fence": record.fence})
        return Attempt(scope, replayed=True, fence=record.fence, response=response)

    def complete_deferred(self, scope: Scope, token: str, attempt: Attempt) -> None:
        """Complete ``attempt`` in a transaction of its own (the asyncio path)."""
        with self.store.transaction() as handle:
            self._complete(scope, token, attempt, handle)

    def _complete(self, scope: Scope, token: str, attempt: Attempt, handle: Any) -> None:
        attempt.flush()
        encoded = canonical_bytes(attempt.response, what="response").decode("utf-8")
        self.store.complete(
            scope,
            token,
            encoded,
            now_ms=self._now_ms(),
            retention_ms=int(self.config.retention_seconds * 1000),
            handle=handle,
            deferred=attempt.deferred,
        )
        # Fresh and replayed callers get the same value: the stored JSON, not the handler's
        # Python object (a tuple would come back from a replay as a list).
        attempt.stored(json.loads(encoded))

    def settle(self, scope: Scope, token: str, exc: BaseException) -> None:
        """Release the key after a retryable failure, or store a terminal one."""
        self._settle(scope, token, exc)

    def _settle(self, scope: Scope, token: str, exc: BaseException) -> None:
        try:
            if self.config.terminal(exc):
                error = json.dumps(
                    {
                        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                        "message": str(exc),
                    }
                )
                self.store.fail(
                    scope,
                    token,
                    error,
                    now_ms=self._now_ms(),
                    retention_ms=int(self.config.retention_seconds * 1000),
                )
            else:
                self.store.release(scope, token)
        except Exception as settle_exc:
            # The handler's error is what the caller must see; the lease expires on its own.
            _log.warning("could not settle idempotency key after failure: %r", settle_exc)

    def _emit(
        self,
        action: str,
        scope: Scope,
        outcome: str,
        details: Mapping[str, Any],
        handle: Any = None,
    ) -> None:
        emit(self._audit, self.config.actor, action, scope, outcome, details, handle)
