"""The Redis store: every decision one Lua script, so one round trip and atomic on the server.

Rows are JSON strings at ``{prefix}abuse:{len}:{tenant}:{len}:{kind}:{len}:{name}`` (see
:mod:`pytest_reliability._redis_keys`), each with a Redis TTL of its retention, so forgotten
subjects disappear without a purge. Blocked subjects are also in the sorted set
``{prefix}abuse-blocks`` scored by the block's end, which the sweeper reads. An audited step
pushes its outbox record onto the list ``{prefix}abuse-outbox`` inside the same script (ids
``{marker value}-{counter}``, the counter at ``{prefix}abuse-outbox-seq``), so a decision stays
one round trip; the flush lease is ``{prefix}abuse-outbox-lease``.

Every call checks the store marker ``{prefix}abuse-marker``, written once when the store is
deployed (``initialize=True``): a server that lost its data (restart without persistence,
eviction, ``FLUSHALL``) no longer holds it, and every decision then fails closed with
:class:`~pytest_reliability.errors.StoreDataLost` rather than reading lost blocks as "not
blocked".
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Sequence
from typing import Any, final

import redis
from redis.exceptions import RedisError

from pytest_reliability._redis_keys import redis_key
from pytest_reliability._redis_server import Durability, check_durability, check_mode
from pytest_reliability.errors import AbuseStoreUnavailable, ConfigurationError, StoreDataLost
from pytest_reliability.security.abuse_protection._auditing import OUTBOX_CAP
from pytest_reliability.security.abuse_protection._detectors import Check
from pytest_reliability.security.abuse_protection._redis_script import APPLY
from pytest_reliability.security.abuse_protection._store import RowKey
from pytest_reliability.security.abuse_protection._transition import Outcome, Params

__all__ = ["RedisAbuseStore"]

_new = tuple.__new__
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Pops the head only if it is the record named: never a record that was not delivered.
_POP = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and string.sub(head, 1, #ARGV[1]) == ARGV[1] then return redis.call('LPOP', KEYS[1]) end
return false
"""


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@final
class RedisAbuseStore:
    """Abuse state in Redis. ``prefix`` keeps deployments (and tests) apart."""

    __slots__ = (
        "_apply",
        "_checks",
        "_contexts",
        "_durability",
        "_epoch",
        "_initialize",
        "_params",
        "_pop",
        "_release",
        "blocks",
        "client",
        "lease",
        "marker",
        "outbox",
        "outbox_cap",
        "outbox_seq",
        "prefix",
    )

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        durability: Durability = "require",
        initialize: bool = False,
        outbox_cap: int = OUTBOX_CAP,
    ) -> None:
        """Check the server and the marker; see :meth:`from_url` for the options."""
        if isinstance(outbox_cap, bool) or not isinstance(outbox_cap, int) or outbox_cap < 1:
            raise ConfigurationError(f"outbox_cap {outbox_cap!r}: need a whole number >= 1")
        self.outbox_cap = outbox_cap
        if client.connection_pool.connection_kwargs.get("socket_timeout") is None:
            raise ConfigurationError(
                "the Redis abuse store needs a client with socket_timeout set (every store "
                "call must have a bounded wait): redis.Redis(..., socket_timeout=5.0)"
            )
        self.client = client
        self.prefix = prefix
        self.marker = redis_key(prefix, "abuse-marker")
        self.blocks = redis_key(prefix, "abuse-blocks")
        self.outbox = redis_key(prefix, "abuse-outbox")
        self.outbox_seq = redis_key(prefix, "abuse-outbox-seq")
        self.lease = redis_key(prefix, "abuse-outbox-lease")
        self._apply = client.register_script(APPLY)
        self._release = client.register_script(_RELEASE)
        self._pop = client.register_script(_POP)
        self._contexts: dict[tuple[str, str], str] = {}
        self._durability = check_mode(durability)
        self._initialize = initialize
        self._epoch: str | None = None
        self._params: dict[Params, str] = {}
        self._checks: dict[tuple[Check, ...], str] = {}
        # A server down now is not a configuration error: the first call retries and fails
        # closed until it is back. A reachable server that may drop writes is refused now.
        with contextlib.suppress(RedisError):
            self._connect()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "",
        durability: Durability = "require",
        initialize: bool = False,
        socket_timeout: float = 5.0,
        outbox_cap: int = OUTBOX_CAP,
        **client_options: Any,
    ) -> RedisAbuseStore:
        """Connect to ``url`` with bounded waits (``socket_timeout`` seconds per call).

        ``durability="require"`` refuses a server that can silently drop acknowledged state
        (no AOF, an evicting memory policy); ``"warn"`` accepts it with a warning.
        ``initialize=True`` writes the store marker when it is missing: pass it when the store
        is first deployed (or once a data loss is accepted), never on every start.
        """
        client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=client_options.pop("socket_connect_timeout", socket_timeout),
            **client_options,
        )
        return cls(
            client,
            prefix=prefix,
            durability=durability,
            initialize=initialize,
            outbox_cap=outbox_cap,
        )

    def _connect(self) -> str:
        check_durability(self.client, durability=self._durability, what="Redis abuse store")
        if self._initialize:
            self.client.set(self.marker, secrets.token_hex(16), nx=True)
        epoch = _text(self.client.get(self.marker))
        if epoch is None:
            raise StoreDataLost(
                f"abuse store marker {self.marker} is missing: the store is new or lost its "
                "data (blocks included). Pass initialize=True when deploying a new store, or "
                "once the loss is accepted; until then every decision fails closed"
            )
        self._epoch = str(epoch)
        # Initialising is a deployment step, done once: a marker lost later is a data loss.
        self._initialize = False
        return self._epoch

    def _params_json(self, params: Params) -> str:
        text = self._params.get(params)
        if text is None:
            text = self._params[params] = json.dumps(
                {
                    "hold": list(params.hold),
                    "ladder": list(params.ladder),
                    "memory": params.memory,
                    "tw": params.throttle_window,
                    "tl": params.throttle_limit,
                    "strikes": params.strikes,
                    "aw": params.audit_window,
                    "ret": params.retention,
                }
            )
        return text

    def _checks_json(self, checks: Sequence[Check]) -> str:
        if not checks:
            return "[]"
        if type(checks) is not tuple:
            return json.dumps(checks)
        # A detector's constant checks (a tuple) are encoded once.
        text = self._checks.get(checks)
        if text is None:
            if len(self._checks) >= 256:
                self._checks.clear()
            text = self._checks[checks] = json.dumps(checks)
        return text

    def _context_json(self, record: tuple[str, str] | None) -> str:
        if record is None:
            return ""
        text = self._contexts.get(record)
        if text is None:
            if len(self._contexts) >= 256:
                self._contexts.clear()
            text = self._contexts[record] = json.dumps(record)
        return text

    def _row_key(self, tenant: str, kind: str, name: str) -> str:
        return redis_key(self.prefix, "abuse", tenant, kind, name)

    def apply(
        self,
        tenant: str,
        keys: Sequence[RowKey],
        now_ms: int,
        checks: Sequence[Check],
        params: Params,
        *,
        force: tuple[Any, ...] | None = None,
        consume: bool = True,
        record: tuple[str, str] | None = None,
    ) -> Outcome:
        """Run the transition in Redis (one ``EVALSHA``, the outbox record included)."""
        try:
            epoch = self._epoch or self._connect()
            subject = keys[0][1]
            result = self._apply(
                keys=[
                    self.marker,
                    self.blocks,
                    self.outbox,
                    self.outbox_seq,
                    *(self._row_key(tenant, k, n) for k, n in keys),
                ],
                args=[
                    now_ms,
                    self._params_json(params),
                    self._checks_json(checks),
                    json.dumps(force) if force is not None else "",
                    "1" if consume else "0",
                    json.dumps([tenant, subject]),
                    epoch,
                    self._context_json(record),
                    self.outbox_cap,
                ],
            )
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc
        text = _text(result)
        if text == "full":
            raise AbuseStoreUnavailable(
                f"abuse audit outbox is full ({self.outbox_cap} records): an audited step is "
                "refused until the audit log takes them"
            )
        if text == "lost":
            self._epoch = None
            raise StoreDataLost(
                f"abuse store marker {self.marker} is gone or changed: the server lost its data "
                "(blocks included); failing closed until it is re-initialised"
            )
        try:
            parts = text.split("\x1f", 10)
            n = [int(v) for v in parts[:9]]
            return _new(
                Outcome,
                (
                    n[0],
                    n[1] == 1,
                    n[2],
                    parts[9],
                    parts[10],
                    n[3],
                    n[4],
                    n[5] == 1,
                    n[6],
                    n[7],
                    n[8],
                ),
            )
        except (AttributeError, IndexError, ValueError) as exc:
            raise AbuseStoreUnavailable(f"abuse store answered {text!r}: {exc}") from None

    def outbox_peek(self, limit: int) -> list[tuple[str, str]]:
        """Pending outbox records, oldest first."""
        try:
            raw = self.client.lrange(self.outbox, 0, max(0, limit - 1))
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc
        found = []
        for item in raw:
            text = str(_text(item))
            # The id leads the record: '["<id>",...'; an unreadable one is kept under its text.
            head = text[2 : text.find('"', 2)] if text.startswith('["') else text
            found.append((head, text))
        return found

    def outbox_delete(self, record_id: str) -> None:
        """Delete the delivered record (the oldest: flushes go in order under the lease)."""
        try:
            self._pop(keys=[self.outbox], args=[f'["{record_id}"'])
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc

    def outbox_lease(self, owner: str, lease_ms: int) -> bool:
        """Take the flush lease (``SET NX PX``), or renew it if ``owner`` holds it."""
        try:
            if self.client.set(self.lease, owner, nx=True, px=lease_ms):
                return True
            if _text(self.client.get(self.lease)) == owner:
                return bool(self.client.set(self.lease, owner, xx=True, px=lease_ms))
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc
        return False

    def outbox_release(self, owner: str) -> None:
        """Delete the lease if ``owner`` holds it (compare and delete, in one script)."""
        try:
            self._release(keys=[self.lease], args=[owner])
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc

    def read(self, tenant: str, subject: str) -> dict[str, Any] | None:
        """Return the subject's row, or None."""
        try:
            raw = self.client.get(self._row_key(tenant, "s", subject))
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc
        if raw is None:
            return None
        row = json.loads(raw)
        if not isinstance(row, dict):
            raise AbuseStoreUnavailable("abuse store row is not a JSON object")
        for name in ("c", "d"):
            if isinstance(row.get(name), list):  # an empty Lua table may encode as []
                row[name] = {}
        return row

    def expired_blocks(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """Subjects whose stored block ended by ``now_ms`` (from the blocks index)."""
        try:
            members = self.client.zrangebyscore(self.blocks, "-inf", now_ms, start=0, num=limit)
        except RedisError as exc:
            raise AbuseStoreUnavailable(f"abuse store unavailable: {exc!r}") from exc
        out = []
        for member in members:
            tenant, subject = json.loads(_text(member))
            out.append((str(tenant), str(subject)))
        return out

    def purge(self, now_ms: int) -> int:
        """Nothing to delete: every row carries a Redis TTL of its retention."""
        return 0

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
