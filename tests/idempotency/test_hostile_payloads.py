"""Text UTF-8 cannot hold (lone surrogates) is bad input on every store, sync and asyncio.

``json.loads('"\\ud800"')`` produces such a string from a client's body; it must get the
documented 400 answer and leave nothing stored, never a ``UnicodeEncodeError`` from a store.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pytest_reliability.audit import InMemoryAuditLog
from pytest_reliability.idempotency import (
    Attempt,
    IdempotencyEngine,
    PayloadNotSerializable,
    Scope,
    State,
    api_operation,
    key_hash,
)

pytestmark = [pytest.mark.idempotency, pytest.mark.usefixtures("tenant")]
OP = "api.create_order"

SURROGATE_VALUES = [
    json.loads('"\\ud800"'),
    {"note": json.loads('"a\\udfffb"')},
    {json.loads('"\\udc00"'): 1},
    ["ok", {"deep": [json.loads('"\\ud83d"')]}],
]
IDS = ["high", "low-in-value", "in-key", "nested"]


def _nothing_stored(engine: IdempotencyEngine, key: str) -> None:
    assert engine.store.get(Scope("acme", OP, key_hash(key))) is None
    assert engine.state(operation=OP, key=key) is State.NEW


def _never(attempt: Attempt) -> Any:
    raise AssertionError("the handler must not run")


@pytest.mark.parametrize("payload", SURROGATE_VALUES, ids=IDS)
def test_surrogate_payload_is_rejected_before_any_store_call(
    make_idem: Any, audit: InMemoryAuditLog, payload: Any
) -> None:
    engine = make_idem()
    with pytest.raises(PayloadNotSerializable, match="surrogate"):
        engine.run(operation=OP, key="k", payload=payload, handler=_never)
    _nothing_stored(engine, "k")
    assert list(audit.events()) == []
    # The key is still usable with a good payload.
    assert engine.run(operation=OP, key="k", payload={"ok": 1}, handler=lambda a: 7).response == 7


@pytest.mark.parametrize("response", SURROGATE_VALUES, ids=IDS)
def test_surrogate_response_releases_the_key_and_stores_nothing(
    make_idem: Any, response: Any
) -> None:
    engine = make_idem()
    with pytest.raises(PayloadNotSerializable, match=r"response.*surrogate"):
        engine.run(operation=OP, key="k", payload={}, handler=lambda a: response)
    _nothing_stored(engine, "k")


def test_surrogates_in_asyncio_payloads_and_responses(make_idem: Any) -> None:
    engine = make_idem()
    bad = json.loads('"\\ud800"')

    async def handler(attempt: Attempt) -> Any:
        return {"text": bad}

    async def main() -> None:
        with pytest.raises(PayloadNotSerializable, match="surrogate"):
            await engine.run_async(operation=OP, key="p", payload=bad, handler=handler)
        with pytest.raises(PayloadNotSerializable, match="surrogate"):
            await engine.run_async(operation=OP, key="r", payload={}, handler=handler)

    asyncio.run(main())
    _nothing_stored(engine, "p")
    _nothing_stored(engine, "r")


def test_surrogate_through_the_decorator(make_idem: Any) -> None:
    engine = make_idem()

    @engine.idempotent(OP, key=lambda text: "d")
    def echo(text: str) -> str:
        raise AssertionError("the function must not run")

    with pytest.raises(PayloadNotSerializable):
        echo(json.loads('"\\udbff"'))
    _nothing_stored(engine, "d")


def test_api_operation_answers_a_surrogate_body_with_the_documented_400(make_idem: Any) -> None:
    engine = make_idem()
    body = json.loads('{"name": "\\ud800"}')
    answer = api_operation(
        engine,
        method="POST",
        route="/orders",
        headers={"Idempotency-Key": "k"},
        body=body,
        handler=lambda attempt: pytest.fail("handler ran"),
    )
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "surrogate" in answer.body["detail"]
    assert engine.store.get(Scope("acme", "api.POST:/orders", key_hash("k"))) is None
