"""The Redis store: one hash per key, every step one Lua script (atomic on the server).

Records live at ``{prefix}idem:{len}:{tenant}:{len}:{operation}:{len}:{key hash}`` (see
:mod:`pytest_reliability._redis_keys`: no tenant or operation name can spell another's key).
Times come from the engine's clock, so retention and leases follow it; each hash also gets a real
Redis TTL (retention plus lease) so forgotten keys disappear even if nobody purges. Completion
with deferred effects uses ``WATCH``/``MULTI``: the effects queued by the handler and the
COMPLETED state are applied in one ``EXEC``, or not at all when the lease was taken over.

Every step also checks the store marker ``{prefix}idem-marker``, a random id written once when
the store is initialised: a server that lost its data (restart without persistence, eviction,
``FLUSHALL``) no longer holds it, and the store then refuses with
:class:`IdempotencyUnavailable` instead of running a handler a second time.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, final

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pytest_reliability._redis_keys import glob_escape, redis_key
from pytest_reliability._redis_server import Durability, check_durability, check_mode
from pytest_reliability.errors import (
    ConfigurationError,
    CorruptRecord,
    IdempotencyUnavailable,
    LeaseLost,
)
from pytest_reliability.idempotency._model import Claim, Record, Scope, State, decode_record
from pytest_reliability.idempotency._redis_scripts import CLAIM, COMPLETE, PURGE_ONE, RELEASE
from pytest_reliability.idempotency._store import Deferred

__all__ = ["RedisStore"]

_FIELDS = ("state", "fp", "token", "fence", "lease", "expires", "response", "error")


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _lost(result: Any) -> bool:
    return isinstance(result, list) and len(result) == 1 and _text(result[0]) == "lost"


_LOST_MESSAGE = (
    "idempotency store lost its data: the store marker {marker} is gone or changed (a Redis "
    "restart without persistence, an eviction or a FLUSH); refusing rather than running a "
    "handler again. Restore the data, or re-initialise the store (initialize=True) once the "
    "loss is accepted"
)


@final
class RedisStore:
    """Idempotency records in Redis. ``prefix`` keeps deployments (and tests) apart."""

    __slots__ = (
        "_claim",
        "_complete",
        "_durability",
        "_epoch",
        "_initialize",
        "_purge_one",
        "_release",
        "client",
        "marker",
        "prefix",
    )

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        durability: Durability = "require",
        initialize: bool = False,
    ) -> None:
        """Check the server and the store marker; see :meth:`from_url` for the options."""
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        if timeout is None:
            raise ConfigurationError(
                "the Redis idempotency store needs a client with socket_timeout set (every "
                "store call must have a bounded wait): redis.Redis(..., socket_timeout=5.0)"
            )
        self.client = client
        self.prefix = prefix
        self.marker = redis_key(prefix, "idem-marker")
        self._claim = client.register_script(CLAIM)
        self._complete = client.register_script(COMPLETE)
        self._release = client.register_script(RELEASE)
        self._purge_one = client.register_script(PURGE_ONE)
        self._durability = check_mode(durability)
        self._initialize = initialize
        self._epoch: str | None = None
        # A server that is down now is not a configuration error: the first call retries the
        # checks and fails closed until they pass. A reachable unsafe server is refused now.
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            self._connect()

    def _connect(self) -> str:
        """Check the server's durability and read the marker (creating it if asked to)."""
        check_durability(self.client, durability=self._durability, what="Redis idempotency store")
        if self._initialize:
            self.client.set(self.marker, secrets.token_hex(16), nx=True)
        epoch = self.client.get(self.marker)
        if epoch is None:
            raise IdempotencyUnavailable(
                f"idempotency store marker {self.marker} is missing: the store is new or lost "
                "its data. Pass initialize=True when deploying a new store (or once the loss "
                "is accepted); until then nothing is acknowledged"
            )
        self._epoch = _text(epoch)
        return self._epoch

    @property
    def epoch(self) -> str:
        """The store marker's value this store checks on every call (connecting if needed)."""
        if self._epoch is not None:
            return self._epoch
        with self._guard():
            return self._connect()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "",
        durability: Durability = "require",
        initialize: bool = False,
        **client_options: Any,
    ) -> RedisStore:
        """Connect to ``url`` (``redis://HOST:PORT/DB``); other options go to ``redis.Redis``.

        ``durability="require"`` (default) refuses with ConfigurationError a server that can drop
        acknowledged records (no append-only file, or an evicting ``maxmemory-policy``);
        ``"warn"`` accepts it with a warning. ``initialize=True`` writes the store marker when
        it is missing (a new deployment); without it a store without its marker is refused.
        Socket timeouts default to 5 s (connect and each reply): a frozen server fails the call
        with :class:`IdempotencyUnavailable` after that.
        """
        client_options.setdefault("socket_timeout", 5.0)
        client_options.setdefault("socket_connect_timeout", 5.0)
        client = redis.Redis.from_url(url, **client_options)
        try:
            return cls(client, prefix=prefix, durability=durability, initialize=initialize)
        except BaseException:
            client.close()
            raise

    def _key(self, scope: Scope) -> str:
        return redis_key(self.prefix, "idem", scope.tenant, scope.operation, scope.key_hash)

    def _check(self, result: Any) -> Any:
        if _lost(result):
            raise IdempotencyUnavailable(_LOST_MESSAGE.format(marker=self.marker))
        return result

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise IdempotencyUnavailable(f"idempotency store unavailable: {exc!r}") from exc
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptRecord(f"stored idempotency record is not a hash: {exc}") from exc
            raise IdempotencyUnavailable(f"idempotency store refused: {exc!r}") from exc

    def _decode(self, flat: Sequence[Any]) -> Record:
        data = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}
        return decode_record([_text(data.get(name)) for name in _FIELDS])

    def claim(
        self,
        scope: Scope,
        fingerprint: str,
        *,
        token: str,
        now_ms: int,
        lease_ms: int,
        retention_ms: int,
        on_takeover: Callable[[Any, int], None] | None = None,
    ) -> Claim:
        """Acquire the key or return its record (see :class:`IdempotencyStore`)."""
        args: list[str | int] = [
            fingerprint, token, now_ms, lease_ms, retention_ms, retention_ms + lease_ms
        ]  # fmt: skip
        with self._guard():
            result = self._check(
                self._claim(keys=[self._key(scope), self.marker], args=[*args, self.epoch])
            )
        kind = _text(result[0])
        if kind == "acquired":
            return Claim(acquired=True, token=token, fence=1)
        if kind == "takeover":
            fence = int(result[1])
            if on_takeover is not None:
                on_takeover(None, fence)
            return Claim(acquired=True, token=token, fence=fence, takeover=True)
        return Claim(acquired=False, record=self._decode(result[1]))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Redis has no transaction spanning the handler; deferred effects join the EXEC."""
        yield None

    def complete(
        self,
        scope: Scope,
        token: str,
        response: str,
        *,
        now_ms: int,
        retention_ms: int,
        handle: Any,
        deferred: Sequence[Deferred] = (),
    ) -> None:
        """Complete if ``token`` holds the key; deferred effects get the MULTI pipeline."""
        key = self._key(scope)
        expires = now_ms + retention_ms
        if not deferred:
            with self._guard():
                args: list[str | int] = [
                    token,
                    "COMPLETED",
                    "response",
                    response,
                    expires,
                    retention_ms,
                ]
                done = self._check(
                    self._complete(keys=[key, self.marker], args=[*args, self.epoch])
                )
            if int(done) != 1:
                raise LeaseLost("the lease on this key was taken over by another worker")
            return
        with self._guard(), self.client.pipeline() as pipe:
            try:
                pipe.watch(key, self.marker)  # type: ignore[no-untyped-call]  # untyped
                if _text(pipe.get(self.marker)) != self.epoch:
                    raise IdempotencyUnavailable(_LOST_MESSAGE.format(marker=self.marker))
                state, holder = (_text(v) for v in pipe.hmget(key, "state", "token"))
                if state != State.IN_PROGRESS.value or holder != token:
                    raise LeaseLost("the lease on this key was taken over by another worker")
                pipe.multi()
                pipe.hset(
                    key, mapping={"state": "COMPLETED", "response": response, "expires": expires}
                )
                pipe.pexpire(key, retention_ms)
                for effect in deferred:
                    effect(pipe)
                pipe.execute()
            except WatchError as exc:
                raise LeaseLost("the lease on this key changed hands before completion") from exc

    def fail(self, scope: Scope, token: str, error: str, *, now_ms: int, retention_ms: int) -> bool:
        """Store a terminal failure if ``token`` holds the key."""
        args: list[str | int] = [
            token,
            "FAILED",
            "error",
            error,
            now_ms + retention_ms,
            retention_ms,
        ]
        with self._guard():
            keys = [self._key(scope), self.marker]
            return int(self._check(self._complete(keys=keys, args=[*args, self.epoch]))) == 1

    def release(self, scope: Scope, token: str) -> bool:
        """Delete the record if ``token`` holds it."""
        with self._guard():
            keys = [self._key(scope), self.marker]
            return int(self._check(self._release(keys=keys, args=[token, self.epoch]))) == 1

    def get(self, scope: Scope) -> Record | None:
        """Return the record, or None."""
        with self._guard(), self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.marker)
            pipe.hgetall(self._key(scope))
            epoch, flat = pipe.execute()
        if _text(epoch) != self.epoch:
            raise IdempotencyUnavailable(_LOST_MESSAGE.format(marker=self.marker))
        if not flat:
            return None
        pairs = [item for pair in flat.items() for item in pair]
        return self._decode(pairs)

    def purge(self, now_ms: int) -> int:
        """Delete this prefix's records past retention whose lease is not live."""
        purged = 0
        with self._guard():
            for key in self.client.scan_iter(match=f"{glob_escape(self.prefix)}idem:*", count=500):
                purged += int(self._purge_one(keys=[key], args=[now_ms]))
        return purged

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
