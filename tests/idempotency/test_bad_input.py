"""Bad input and broken stores: rejected up front, failing closed, never re-executing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

import pytest_reliability.idempotency as idem
from pytest_reliability._redis_keys import redis_key
from pytest_reliability.errors import (
    ConfigurationError,
    CorruptRecord,
    IdempotencyUnavailable,
    InvalidIdempotencyKey,
    PayloadTooLarge,
    StoreUnavailable,
)
from pytest_reliability.idempotency import (
    Attempt,
    IdempotencyEngine,
    PayloadNotSerializable,
    State,
    key_hash,
    store_from_url,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = [pytest.mark.idempotency, pytest.mark.usefixtures("tenant")]
OP = "api.create_order"


def _never(attempt: Attempt) -> Any:
    raise AssertionError("the handler must not run")


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "clé", "tab\there", "line\nbreak", "\x7f", None, 42],
    ids=["empty", "too-long", "non-ascii", "tab", "newline", "del", "none", "int"],
)
def test_invalid_keys_are_rejected(key: Any) -> None:
    engine = IdempotencyEngine.from_url("memory://")
    with pytest.raises(InvalidIdempotencyKey):
        engine.run(operation=OP, key=key, payload={}, handler=_never)


def test_longest_and_widest_valid_keys_are_accepted() -> None:
    engine = IdempotencyEngine.from_url("memory://")
    for key in ("a", "x" * 255, "".join(chr(c) for c in range(0x20, 0x7F))):
        assert engine.run(operation=OP, key=key, payload={}, handler=lambda a: 1).response == 1


@pytest.mark.parametrize("operation", ["", "has space", "-leading", "x" * 129])
def test_operation_names_must_be_explicit_and_stable(operation: str) -> None:
    engine = IdempotencyEngine.from_url("memory://")
    with pytest.raises(ConfigurationError):
        engine.run(operation=operation, key="k", payload={}, handler=_never)


def test_payload_over_the_limit_is_rejected(make_idem: Any) -> None:
    engine = make_idem(max_payload_bytes=100)
    engine.run(operation=OP, key="small", payload="x" * 90, handler=lambda a: 1)
    with pytest.raises(PayloadTooLarge) as info:
        engine.run(operation=OP, key="big", payload="x" * 200, handler=_never)
    assert info.value.limit == 100
    assert info.value.size == 202


def test_default_payload_limit_is_one_mebibyte() -> None:
    engine = IdempotencyEngine.from_url("memory://")
    with pytest.raises(PayloadTooLarge):
        engine.run(operation=OP, key="k", payload="x" * (1024 * 1024), handler=_never)


@pytest.mark.parametrize("payload", [{1, 2}, object(), float("nan"), {"k": b"bytes"}])
def test_payload_that_cannot_be_serialised_is_rejected(payload: Any) -> None:
    engine = IdempotencyEngine.from_url("memory://")
    with pytest.raises(PayloadNotSerializable):
        engine.run(operation=OP, key="k", payload=payload, handler=_never)


def test_response_that_cannot_be_serialised_releases_the_key(make_idem: Any) -> None:
    engine = make_idem()
    with pytest.raises(PayloadNotSerializable):
        engine.run(operation=OP, key="k", payload={}, handler=lambda a: object())
    assert engine.state(operation=OP, key="k") is State.NEW


def test_unknown_store_scheme_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"pytest-reliability\[redis\]"):
        store_from_url("mongodb://localhost/x")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("postgresql://127.0.0.1:1/test", {"connect_args": {"connect_timeout": 2}}),
        ("redis://127.0.0.1:1/0", {}),
    ],
    ids=["postgres", "redis"],
)
def test_unreachable_store_fails_closed_and_the_handler_does_not_run(
    url: str, options: dict[str, Any]
) -> None:
    extra = {"ensure_schema": False} if url.startswith("postgresql") else {}
    engine = IdempotencyEngine.from_url(url, **options, **extra)
    with pytest.raises(IdempotencyUnavailable) as info:
        engine.run(operation=OP, key="k", payload={}, handler=_never)
    assert isinstance(info.value, StoreUnavailable)
    assert info.value.http_status == 503
    assert info.value.__cause__ is not None
    engine.close()


def test_unreadable_sqlite_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(IdempotencyUnavailable):
        IdempotencyEngine.from_url(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")


def test_sql_store_that_goes_away_mid_run_fails_closed(pg_url: str) -> None:
    engine = IdempotencyEngine.from_url(pg_url)
    engine.run(operation=OP, key="k", payload={}, handler=lambda a: 1)
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.begin() as conn:
        conn.execute(sa.text("DROP TABLE idempotency_records"))
    with pytest.raises(IdempotencyUnavailable):
        engine.run(operation=OP, key="k2", payload={}, handler=_never)
    engine.close()


def _corrupt_sql(engine: IdempotencyEngine, key: str) -> None:
    sql = engine.store.engine  # type: ignore[attr-defined]
    with sql.begin() as conn:
        conn.execute(
            sa.text("UPDATE idempotency_records SET response = 'not json{' WHERE key_hash = :k"),
            {"k": key_hash(key)},
        )


def test_corrupt_sql_record_is_a_clear_error_never_a_rerun(sqlite_url: str) -> None:
    engine = IdempotencyEngine.from_url(sqlite_url)
    engine.run(operation=OP, key="k", payload={}, handler=lambda a: {"ok": 1})
    _corrupt_sql(engine, "k")
    with pytest.raises(CorruptRecord):
        engine.run(operation=OP, key="k", payload={}, handler=_never)
    engine.close()


@pytest.mark.redis
@pytest.mark.parametrize(
    "damage",
    [("hset", "fence", "not-a-number"), ("hdel", "state", None), ("string", None, None)],
    ids=["bad-fence", "no-state", "wrong-type"],
)
def test_corrupt_redis_record_is_a_clear_error_never_a_rerun(
    redis_url: str, redis_prefix: str, damage: tuple[str, Any, Any]
) -> None:
    engine = IdempotencyEngine.from_url(
        redis_url, prefix=redis_prefix, durability="warn", initialize=True
    )
    engine.run(operation=OP, key="k", payload={}, handler=lambda a: {"ok": 1})
    client = redis.Redis.from_url(redis_url)
    name = redis_key(redis_prefix, "idem", "acme", OP, key_hash("k"))
    kind, field, value = damage
    if kind == "hset":
        client.hset(name, field, value)
    elif kind == "hdel":
        client.hdel(name, field)
    else:
        client.delete(name)
        client.set(name, "garbage")
    client.close()
    with pytest.raises(CorruptRecord):
        engine.run(operation=OP, key="k", payload={}, handler=_never)
    engine.close()


def test_public_names_are_exactly_the_documented_ones() -> None:
    public = {n for n in dir(idem) if not n.startswith("_")} - {"annotations"}
    assert set(idem.__all__) == public
    with tenant_scope("acme"):
        assert key_hash("k") == key_hash("k")
