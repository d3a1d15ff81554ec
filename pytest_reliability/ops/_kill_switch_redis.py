"""The Redis kill switch store: state in a hash, flips announced on a pub/sub channel."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, final

from pytest_reliability.errors import ConfigurationError, StoreUnavailable
from pytest_reliability.ops._kill_switch_model import AuditHook, SwitchRecord
from pytest_reliability.ops._kill_switch_stores import check_namespace

_SOCKET_TIMEOUT = 2.0
_LISTEN_TIMEOUT = 0.25
_RECONNECT_DELAY = 0.2


@final
class RedisStore:
    """Switches in the hash ``{prefix}ops:kill_switches:{namespace}``.

    A flip is one ``MULTI``: ``HSET`` the record, ``HINCRBY`` the version, ``PUBLISH`` on
    ``{prefix}ops:kill_switches:{namespace}:changes``. Pub/sub is fire and forget (a subscriber
    that is reconnecting misses messages), so instances also poll the hash as a backstop.
    """

    kind = "redis"
    shared = True

    def __init__(self, url: str, *, namespace: str, key_prefix: str = "") -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "the Redis kill switch store needs redis-py: "
                "pip install 'pytest-reliability[redis]'"
            ) from None
        self._redis = redis
        self.namespace = check_namespace(namespace)
        self.key = f"{key_prefix}ops:kill_switches:{namespace}"
        self.versions = f"{self.key}:versions"
        self.channel = f"{self.key}:changes"
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_SOCKET_TIMEOUT
            )
        except ValueError as exc:
            raise ConfigurationError(f"malformed Redis URL: {exc}") from exc
        self._url = url

    def read_all(self) -> Mapping[str, SwitchRecord]:
        """Return every record in the hash."""
        raw = self._client.hgetall(self.key)
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
        """Audit first (Redis cannot join a SQL transaction), then flip and announce atomically."""
        try:
            version = int(self._client.hincrby(self.versions, record.name, 1))
            stored = replace(record, version=version)
            audit(None)
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(self.key, record.name, json.dumps(stored.as_json()))
            pipe.publish(self.channel, record.name)
            pipe.execute()
        except self._redis.RedisError as exc:
            raise StoreUnavailable(f"kill switch store write failed: {exc}") from exc
        return stored

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Subscribe on a dedicated connection; re-read after every (re)subscription."""
        while not stop.is_set():
            client = self._redis.Redis.from_url(
                self._url, socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_SOCKET_TIMEOUT
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                wake()
                while not stop.is_set():
                    if pubsub.get_message(timeout=_LISTEN_TIMEOUT) is not None:
                        wake()
            except Exception:  # whatever broke the connection: pause, reconnect; polling covers
                stop.wait(_RECONNECT_DELAY)
            finally:
                pubsub.close()
                client.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
