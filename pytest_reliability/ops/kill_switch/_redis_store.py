"""The Redis kill switch store: state in a hash, flips announced on a pub/sub channel.

Keys (see :mod:`pytest_reliability._redis_keys`; no namespace can spell another's key):

* ``{prefix}ks:{len}:{namespace}``: the records, one JSON value per switch;
* ``{prefix}ks-versions:{len}:{namespace}``: each switch's version counter;
* ``{prefix}ks-marker:{len}:{namespace}``: the store marker, written when an operator seeds it;
* channel ``{prefix}ks-changes:{len}:{namespace}``: flips are announced here.

A flip is one Lua script: the version is incremented, the record written with that version and
the flip announced in one atomic step, so the record with the highest version is always the last
write and every instance that reads the store converges on it. A store without its marker (new,
or one that lost its data) raises :class:`StoreDataLost` on every read: every switch reads
engaged until an operator seeds it (:meth:`KillSwitches.seed`).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, final

from pytest_reliability._redis_keys import redis_key
from pytest_reliability._redis_server import Durability, check_durability, check_mode
from pytest_reliability.errors import ConfigurationError, StoreDataLost, StoreUnavailable
from pytest_reliability.ops.kill_switch._model import AuditHook, SwitchRecord
from pytest_reliability.ops.kill_switch._store_common import (
    LISTEN_TIMEOUT,
    RECONNECT_DELAY,
    check_namespace,
)

DEFAULT_SOCKET_TIMEOUT = 2.0
"""Seconds a Redis kill switch call waits for a connection or a reply before failing closed."""

# KEYS: records, versions, channel. ARGV: switch name, the record's JSON without its closing
# brace (the script appends the version it assigns). Returns the version.
_WRITE = """
local v = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. v .. '}')
redis.call('PUBLISH', KEYS[3], ARGV[1])
return v
"""

# KEYS: records, versions, channel, marker. ARGV: marker value, then name/JSON pairs of the
# engaged switches. The records (the others released) and the marker in one step: a store is
# never half seeded. Versions carry on where they are, so they never go back while kept.
_SEED = """
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  local v = redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. v .. '}')
end
redis.call('SET', KEYS[4], ARGV[1])
redis.call('PUBLISH', KEYS[3], 'seed')
return 1
"""


def _json_head(record: SwitchRecord) -> str:
    data = record.as_json()
    del data["version"]
    return json.dumps(data)[:-1] + ', "version": '


@final
class RedisStore:
    """Switches of one namespace in Redis (see the module docstring for the keys)."""

    kind = "redis"
    shared = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        key_prefix: str = "",
        durability: Durability = "require",
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    ) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "the Redis kill switch store needs redis-py: "
                "pip install 'pytest-reliability[redis]'"
            ) from None
        if not 0 < socket_timeout <= 60:
            raise ConfigurationError(f"socket_timeout={socket_timeout!r}: need 0 < s <= 60")
        self._redis = redis
        self.namespace = check_namespace(namespace)
        self.key = redis_key(key_prefix, "ks", namespace)
        self.versions = redis_key(key_prefix, "ks-versions", namespace)
        self.marker = redis_key(key_prefix, "ks-marker", namespace)
        self.channel = redis_key(key_prefix, "ks-changes", namespace)
        self._timeout = socket_timeout
        self._durability = check_mode(durability)
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        except ValueError as exc:
            raise ConfigurationError(f"malformed Redis URL: {exc}") from exc
        self._url = url
        self._write = self._client.register_script(_WRITE)
        self._seed = self._client.register_script(_SEED)
        self._checked = False
        # A server that is down now is not a configuration error: reads fail (switches read
        # engaged) until the check passes. A reachable server that can lose state is refused.
        try:
            self._check_server()
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        except BaseException:
            self._client.close()
            raise

    def _check_server(self) -> None:
        if not self._checked:
            check_durability(
                self._client, durability=self._durability, what="Redis kill switch store"
            )
            self._checked = True

    def read_all(self) -> Mapping[str, SwitchRecord]:
        """Return every record; :class:`StoreDataLost` when the store marker is missing."""
        self._check_server()
        with self._client.pipeline(transaction=True) as pipe:
            pipe.get(self.marker)
            pipe.hgetall(self.key)
            marker, raw = pipe.execute()
        if marker is None:
            raise StoreDataLost(
                f"kill switch store {self.marker} has no marker: it is new or lost its data "
                "(Redis restart without persistence, eviction, FLUSH); every switch reads "
                "engaged until an operator seeds it"
            )
        out: dict[str, SwitchRecord] = {}
        for field, value in raw.items():
            data: dict[str, Any] = json.loads(value)
            name = field.decode() if isinstance(field, bytes) else field
            out[name] = SwitchRecord(
                name,
                bool(data["engaged"]),
                str(data["reason"]),
                str(data["actor"]),
                float(data["changed_at"]),
                int(data.get("version", 0)),
            )
        return out

    def write(self, record: SwitchRecord, audit: AuditHook) -> SwitchRecord:
        """Audit first (Redis cannot join a SQL transaction), then version, write and announce
        in one atomic script."""
        try:
            self._check_server()
            audit(None)
            version = int(self._write(keys=[self.key, self.versions, self.channel],
                                      args=[record.name, _json_head(record)]))  # fmt: skip
        except self._redis.RedisError as exc:
            raise StoreUnavailable(f"kill switch store write failed: {exc}") from exc
        return replace(record, version=version)

    def seed(self, records: list[SwitchRecord], audit: AuditHook) -> None:
        """Replace every record by ``records`` (the engaged switches) and write a new store
        marker, in one step: the operator's (re-)seed."""
        args: list[str] = [secrets.token_hex(16)]
        for record in records:
            args += [record.name, _json_head(record)]
        try:
            self._check_server()
            audit(None)
            self._seed(keys=[self.key, self.versions, self.channel, self.marker], args=args)
        except self._redis.RedisError as exc:
            raise StoreUnavailable(f"kill switch store seed failed: {exc}") from exc

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Subscribe on a dedicated connection; re-read after every (re)subscription."""
        while not stop.is_set():
            client = self._redis.Redis.from_url(
                self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                wake()
                while not stop.is_set():
                    if pubsub.get_message(timeout=LISTEN_TIMEOUT) is not None:
                        wake()
            except Exception:  # whatever broke the connection: pause, reconnect; polling covers
                stop.wait(RECONNECT_DELAY)
            finally:
                pubsub.close()
                client.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
