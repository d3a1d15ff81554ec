"""Local effects commit with the COMPLETED record; asyncio, decorators and the context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pytest_reliability.audit import AuditLog
from pytest_reliability.clock import ManualClock
from pytest_reliability.db import create_schema
from pytest_reliability.errors import LeaseLost
from pytest_reliability.idempotency import (
    AUDIT_LEASE_TAKEOVER,
    Attempt,
    IdempotencyConfig,
    IdempotencyEngine,
    State,
    current_attempt,
)
from pytest_reliability.idempotency._sql_store import SqlStore

pytestmark = [pytest.mark.idempotency, pytest.mark.usefixtures("tenant")]
OP = "billing.charge"
charges = sa.Table(
    "test_charges",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
)


@pytest.fixture
def billing(engine: Engine, clock: ManualClock) -> Iterator[tuple[IdempotencyEngine, Engine]]:
    """An engine on the SQL store of ``engine`` (SQLite and PostgreSQL), with a billing table."""
    charges.create(engine)
    create_schema(engine)
    audit = AuditLog(engine, clock=clock)
    idem = IdempotencyEngine(
        SqlStore(engine), audit=audit, clock=clock, config=IdempotencyConfig(lease_seconds=5)
    )
    yield idem, engine
    idem.close()


def _rows(engine: Engine, key: str) -> int:
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(charges).where(charges.c.key == key)
        return int(conn.execute(query).scalar_one())


def _charge(key: str, amount: int) -> Any:
    def handler(attempt: Attempt) -> dict[str, int]:
        assert attempt.connection is not None
        attempt.connection.execute(charges.insert().values(key=key, amount=amount))
        return {"charged": amount}

    return handler


def test_billing_row_and_record_commit_together(billing: Any) -> None:
    idem, engine = billing
    idem.run(operation=OP, key="c1", payload={"amount": 7}, handler=_charge("c1", 7))
    idem.run(operation=OP, key="c1", payload={"amount": 7}, handler=_charge("c1", 7))
    assert _rows(engine, "c1") == 1


def test_billing_row_rolls_back_when_the_handler_fails_after_writing(billing: Any) -> None:
    idem, engine = billing

    def half_done(attempt: Attempt) -> Any:
        _charge("c2", 7)(attempt)
        raise TimeoutError("the payment provider timed out after our insert")

    with pytest.raises(TimeoutError):
        idem.run(operation=OP, key="c2", payload={"amount": 7}, handler=half_done)
    assert _rows(engine, "c2") == 0
    assert idem.state(operation=OP, key="c2") is State.NEW
    idem.run(operation=OP, key="c2", payload={"amount": 7}, handler=_charge("c2", 7))
    assert _rows(engine, "c2") == 1


def test_fenced_worker_effects_roll_back_with_its_failed_completion(
    billing: Any, clock: ManualClock
) -> None:
    idem, engine = billing
    scope, fp = idem.prepare(OP, "c3", {"amount": 7})
    stale = idem.acquire(scope, fp)
    clock.advance(6)
    fresh = idem.run(operation=OP, key="c3", payload={"amount": 7}, handler=_charge("c3", 7))
    assert fresh.takeover

    # The stale worker writes its charge and tries to complete in the same transaction.
    def stale_worker() -> None:
        with idem.store.transaction() as conn:
            conn.execute(charges.insert().values(key="c3", amount=7))
            idem.store.complete(
                scope, stale.token, '{"charged":7}', now_ms=0, retention_ms=1000, handle=conn
            )

    with pytest.raises(LeaseLost):
        stale_worker()
    assert _rows(engine, "c3") == 1
    audit = idem.audit
    (event,) = audit.events(action=AUDIT_LEASE_TAKEOVER)
    assert event.details["fence"] == 2
    assert audit.verify().ok


def test_context_manager_form(billing: Any) -> None:
    idem, engine = billing
    for _ in range(2):
        with idem.attempt(operation=OP, key="c4", payload={"amount": 3}) as attempt:
            if not attempt.replayed:
                attempt.connection.execute(charges.insert().values(key="c4", amount=3))
                attempt.complete({"charged": 3})
        assert attempt.response == {"charged": 3}
    assert _rows(engine, "c4") == 1


def test_decorator_reaches_the_transaction_through_current_attempt(billing: Any) -> None:
    idem, engine = billing

    @idem.idempotent("billing.charge", key=lambda order, amount: order)
    def charge(order: str, amount: int) -> dict[str, int]:
        attempt = current_attempt()
        assert attempt is not None
        attempt.connection.execute(charges.insert().values(key=order, amount=amount))
        return {"charged": amount}

    assert charge("c5", 9) == {"charged": 9}
    assert charge("c5", 9) == {"charged": 9}
    assert _rows(engine, "c5") == 1
    assert current_attempt() is None


def test_async_run_and_decorator_on_every_store(make_idem: Any) -> None:
    engine = make_idem()
    calls: list[str] = []

    async def handler(attempt: Attempt) -> str:
        await asyncio.sleep(0)
        calls.append(attempt.key_hash)
        return "ok"

    @engine.idempotent("webhooks.stripe", key=lambda event_id: event_id)
    async def on_event(event_id: str) -> str:
        calls.append(event_id)
        return f"handled {event_id}"

    async def main() -> list[Any]:
        first = await engine.run_async(operation=OP, key="a1", payload={}, handler=handler)
        second = await engine.run_async(operation=OP, key="a1", payload={}, handler=handler)
        third = await on_event("evt_1")
        fourth = await on_event("evt_1")
        return [first.replayed, second.replayed, third, fourth]

    assert asyncio.run(main()) == [False, True, "handled evt_1", "handled evt_1"]
    assert len(calls) == 2


def test_async_failure_releases_and_deferred_effects_commit(
    make_idem: Any, store_kind: str, request: pytest.FixtureRequest
) -> None:
    engine = make_idem()
    applied: list[Any] = []

    async def failing(attempt: Attempt) -> str:
        raise ConnectionError("try again")

    async def effectful(attempt: Attempt) -> str:
        attempt.defer(lambda handle: applied.append(type(handle).__name__))
        return "ok"

    async def main() -> None:
        with pytest.raises(ConnectionError):
            await engine.run_async(operation=OP, key="a2", payload={}, handler=failing)
        await engine.run_async(operation=OP, key="a2", payload={}, handler=effectful)
        await engine.run_async(operation=OP, key="a2", payload={}, handler=effectful)

    asyncio.run(main())
    expected = {"memory": "NoneType", "sqlite": "Connection", "postgres": "Connection"}
    assert applied == [expected.get(store_kind, "Pipeline")]


@pytest.mark.redis
def test_redis_deferred_effects_join_the_completing_exec(redis_url: str, redis_prefix: str) -> None:
    engine = IdempotencyEngine.from_url(
        redis_url, prefix=redis_prefix, durability="warn", initialize=True
    )
    counter = f"{redis_prefix}effects"

    def handler(attempt: Attempt) -> str:
        attempt.defer(lambda pipe: pipe.incr(counter))
        return "ok"

    for _ in range(3):
        engine.run(operation=OP, key="r1", payload={}, handler=handler)
    client = redis.Redis.from_url(redis_url)
    assert int(client.get(counter) or 0) == 1
    client.close()
    engine.close()


class _Base(DeclarativeBase):
    pass


class Invoice(_Base):
    """An ORM-mapped billing row."""

    __tablename__ = "test_invoices"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(64))


def test_orm_session_joins_the_completing_transaction(billing: Any) -> None:
    idem, engine = billing
    _Base.metadata.create_all(engine)

    def invoice(key: str, fail: bool) -> Any:
        def handler(attempt: Attempt) -> str:
            attempt.session().add(Invoice(key=key))
            if fail:
                raise TimeoutError("after the ORM add, before completion")
            return "invoiced"

        return handler

    with pytest.raises(TimeoutError):
        idem.run(operation=OP, key="o1", payload={}, handler=invoice("o1", fail=True))
    assert idem.run(operation=OP, key="o1", payload={}, handler=invoice("o1", False)).response
    assert idem.run(operation=OP, key="o1", payload={}, handler=invoice("o1", False)).replayed
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Invoice.key)).scalars().all()
    assert rows == ["o1"]
