"""The shared stores: SQLite, the real PostgreSQL and the real Redis, two instances each."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool

from pytest_reliability.audit import AuditLog, InMemoryAuditLog
from pytest_reliability.db import make_engine
from pytest_reliability.errors import StoreUnavailable
from pytest_reliability.ops.kill_switch import KillSwitches
from pytest_reliability.ops.rbac import AuthorizationEngine, OpsSession
from pytest_reliability.tenancy import PLATFORM_SCOPE, tenant_scope
from tests.ops.conftest import OPERATOR, platform_events, seed_store

pytestmark = pytest.mark.kill_switch

Factory = Callable[..., KillSwitches]


@pytest.fixture(
    params=[
        "sqlite",
        "postgres",
        "redis",
        "sqlite/queuepool",
        "sqlite/nullpool",
        "postgres/queuepool",
        "postgres/nullpool",
    ]
)
def make_switches(request: pytest.FixtureRequest, session: OpsSession) -> Iterator[Factory]:
    """Build switches over one shared store; every instance is closed after the test.

    ``KIND/POOL``: the SQL store on one engine from plain ``sqlalchemy.create_engine`` (not
    ``make_engine``) with that pool class, shared by the instances, as a service would pass it.
    """
    plain: Engine | None = None
    extra: dict[str, str] = {}
    if "/" in request.param:
        kind, _, pool = request.param.partition("/")
        if kind == "postgres":
            request.applymarker(pytest.mark.postgres)
        raw = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")
        plain = sa.create_engine(raw, poolclass=QueuePool if pool == "queuepool" else NullPool)
        url: Any = plain
    elif request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    elif request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        url = request.getfixturevalue("pg_url")
        extra = {}
    else:
        request.applymarker(pytest.mark.redis)
        url = request.getfixturevalue("redis_url")
        # The shared test Redis has no persistence: accepted explicitly, and each test's
        # namespace is seeded once (a new Redis store reads engaged until an operator seeds it).
        extra = {"key_prefix": request.getfixturevalue("redis_prefix"), "durability": "warn"}
    made: list[KillSwitches] = []
    seeded: set[str] = set()

    def make(**kwargs: object) -> KillSwitches:
        options: dict[str, Any] = {
            "session": session,
            "env": {},
            "poll_interval": 0.05,
            "staleness": 5.0,
            **extra,
            **kwargs,
        }
        switches = KillSwitches.from_url(url, **options)
        made.append(switches)
        namespace = str(options.get("namespace", "default"))
        if request.param == "redis" and namespace not in seeded:
            seeded.add(namespace)
            seed_store(url, **{k: v for k, v in options.items() if k != "session"})
            switches.refresh()
        return switches

    yield make
    for switches in made:
        switches.close()
    if plain is not None:
        plain.dispose()


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.002)
    return time.monotonic() - start


def test_a_flip_in_one_instance_reaches_the_other(make_switches: Factory) -> None:
    a, b = make_switches(), make_switches()
    assert not b.is_engaged("BILLING")
    a.engage("BILLING", reason="incident 42", actor=OPERATOR)
    assert a.is_engaged("BILLING"), "the writer reads its own write at once"
    wait_for(lambda: b.is_engaged("BILLING"))
    record = b.state("BILLING").record
    assert record is not None
    assert (record.actor, record.reason, record.version) == ("alice@ops", "incident 42", 1)
    a.release("BILLING", reason="over", actor=OPERATOR)
    wait_for(lambda: not b.is_engaged("BILLING"))
    assert b.state("BILLING").record.version == 2  # type: ignore[union-attr]


def test_namespaces_do_not_see_each_other(make_switches: Factory) -> None:
    a = make_switches(namespace="service-a")
    b = make_switches(namespace="service-b")
    a.engage("WEBHOOKS", reason="r", actor=OPERATOR)
    time.sleep(0.2)
    assert b.refresh()
    assert not b.is_engaged("WEBHOOKS")


class FailingFlipAudit:
    """An audit sink that records permission checks but cannot record a flip."""

    def __init__(self) -> None:
        self.inner = InMemoryAuditLog()

    def append(self, action: str, **fields: Any) -> Any:
        if action == "ops.kill_switch.engage":
            raise StoreUnavailable("audit log unavailable")
        return self.inner.append(action, **fields)


@pytest.mark.postgres
def test_a_failed_audit_rolls_the_flip_back_on_sql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        authz = AuthorizationEngine()
        authz.grant(OPERATOR.actor, "ops_operator")
        session = OpsSession(authz, FailingFlipAudit())
        with KillSwitches.from_url(engine, session=session, env={}, start=False) as switches:
            with pytest.raises(StoreUnavailable, match="audit log unavailable"):
                switches.engage("BILLING", reason="will not stick", actor=OPERATOR)
            assert switches.refresh()
            assert not switches.is_engaged("BILLING")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ops_kill_switches")).scalar() == 0
    finally:
        engine.dispose()


def test_flip_and_audit_commit_together_on_sqlite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        authz = AuthorizationEngine()
        authz.grant(OPERATOR.actor, "ops_operator")
        audit = AuditLog(engine)
        with KillSwitches.from_url(
            engine, session=OpsSession(authz, audit), env={}, start=False
        ) as switches:
            switches.engage("BILLING", reason="joined", actor=OPERATOR)
        with tenant_scope(PLATFORM_SCOPE):
            actions = [e.action for e in audit.events()]
        assert actions == ["ops.permission", "ops.kill_switch.engage"]
        assert audit.verify().ok
    finally:
        engine.dispose()


@pytest.mark.redis
def test_writing_to_a_store_that_is_down_raises_and_audits_the_failure(
    session: OpsSession, audit: InMemoryAuditLog
) -> None:
    with (
        KillSwitches.from_url(
            "redis://127.0.0.1:1/0", session=session, env={}, start=False
        ) as switches,
        pytest.raises(StoreUnavailable),
    ):
        switches.engage("BILLING", reason="r", actor=OPERATOR)
    assert platform_events(audit)[-1] == (
        "ops.kill_switch.engage",
        "alice@ops",
        "kill_switch:BILLING",
        "error",
    )


def test_writing_to_an_unreachable_database_raises_store_unavailable(session: OpsSession) -> None:
    with KillSwitches.from_url(
        "postgresql://nobody@127.0.0.1:1/none", session=session, env={}, start=False
    ) as switches:
        assert switches.stale()
        with pytest.raises(StoreUnavailable):
            switches.engage("BILLING", reason="r", actor=OPERATOR)
