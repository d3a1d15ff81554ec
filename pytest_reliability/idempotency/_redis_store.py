"""The Redis store: one hash per key, every step one Lua script (atomic on the server).

Records live at ``{prefix}idem:{tenant}:{operation}:{key hash}``. Times come from the engine's
clock, so retention and leases follow it; each hash also gets a real Redis TTL (retention plus
lease) so forgotten keys disappear even if nobody purges. Completion with deferred effects uses
``WATCH``/``MULTI``: the effects queued by the handler and the COMPLETED state are applied in
one ``EXEC``, or not at all when the lease was taken over in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, final

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pytest_reliability.errors import CorruptRecord, IdempotencyUnavailable, LeaseLost
from pytest_reliability.idempotency._model import Claim, Record, Scope, State, decode_record
from pytest_reliability.idempotency._store import Deferred

__all__ = ["RedisStore"]

_FIELDS = ("state", "fp", "token", "fence", "lease", "expires", "response", "error")

_CLAIM = """
local k = KEYS[1]
local fp, token = ARGV[1], ARGV[2]
local now, lease, retention, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6])
local function fresh()
  redis.call('DEL', k)
  redis.call('HSET', k, 'state', 'IN_PROGRESS', 'fp', fp, 'token', token, 'fence', 1,
    'lease', now + lease, 'expires', now + retention)
  redis.call('PEXPIRE', k, ttl)
  return {'acquired', 1}
end
if redis.call('EXISTS', k) == 0 then return fresh() end
local r = redis.call('HMGET', k, 'state', 'fp', 'token', 'fence', 'lease', 'expires')
local fence, leased, expires = tonumber(r[4]), tonumber(r[5]), tonumber(r[6])
if fence == nil or leased == nil or expires == nil then
  return {'existing', redis.call('HGETALL', k)}
end
if expires <= now then return fresh() end
if r[2] ~= fp or r[1] ~= 'IN_PROGRESS' or leased > now then
  return {'existing', redis.call('HGETALL', k)}
end
redis.call('HSET', k, 'token', token, 'fence', fence + 1, 'lease', now + lease)
return {'takeover', fence + 1}
"""

_COMPLETE = """
local k = KEYS[1]
local r = redis.call('HMGET', k, 'state', 'token')
if r[1] ~= 'IN_PROGRESS' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', k, 'state', ARGV[2], ARGV[3], ARGV[4], 'expires', ARGV[5])
redis.call('PEXPIRE', k, ARGV[6])
return 1
"""

_RELEASE = """
local r = redis.call('HMGET', KEYS[1], 'state', 'token')
if r[1] ~= 'IN_PROGRESS' or r[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

_PURGE_ONE = """
local r = redis.call('HMGET', KEYS[1], 'state', 'lease', 'expires')
local now = tonumber(ARGV[1])
local lease, expires = tonumber(r[2]), tonumber(r[3])
if expires == nil or expires > now then return 0 end
if r[1] == 'IN_PROGRESS' and lease ~= nil and lease > now then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@final
class RedisStore:
    """Idempotency records in Redis. ``prefix`` keeps deployments (and tests) apart."""

    __slots__ = ("_claim", "_complete", "_purge_one", "_release", "client", "prefix")

    def __init__(self, client: redis.Redis, *, prefix: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)
        self._purge_one = client.register_script(_PURGE_ONE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", **client_options: Any) -> RedisStore:
        """Connect to ``url`` (``redis://HOST:PORT/DB``); options go to ``redis.Redis``."""
        client_options.setdefault("socket_timeout", 5.0)
        client_options.setdefault("socket_connect_timeout", 5.0)
        return cls(redis.Redis.from_url(url, **client_options), prefix=prefix)

    def _key(self, scope: Scope) -> str:
        return f"{self.prefix}idem:{scope.tenant}:{scope.operation}:{scope.key_hash}"

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
            result = self._claim(keys=[self._key(scope)], args=args)
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
                done = self._complete(keys=[key], args=args)
            if int(done) != 1:
                raise LeaseLost("the lease on this key was taken over by another worker")
            return
        with self._guard(), self.client.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]  # untyped in redis-py
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
            return int(self._complete(keys=[self._key(scope)], args=args)) == 1

    def release(self, scope: Scope, token: str) -> bool:
        """Delete the record if ``token`` holds it."""
        with self._guard():
            return int(self._release(keys=[self._key(scope)], args=[token])) == 1

    def get(self, scope: Scope) -> Record | None:
        """Return the record, or None."""
        with self._guard():
            flat = self.client.hgetall(self._key(scope))
        if not flat:
            return None
        pairs = [item for pair in flat.items() for item in pair]
        return self._decode(pairs)

    def purge(self, now_ms: int) -> int:
        """Delete this prefix's records past retention whose lease is not live."""
        purged = 0
        with self._guard():
            for key in self.client.scan_iter(match=f"{self.prefix}idem:*", count=500):
                purged += int(self._purge_one(keys=[key], args=[now_ms]))
        return purged

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
