"""The audit log: what an append stores, what it refuses, what the database refuses."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pytest_reliability import ids
from pytest_reliability.audit import (
    GENESIS_HASH,
    REDACTED,
    AuditEvent,
    AuditLog,
    InMemoryAuditLog,
    add_listener,
    remove_listener,
)
from pytest_reliability.clock import ManualClock
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.errors import InvalidAuditField, StoreUnavailable, TenantRequired
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.audit


@pytest.fixture
def log(audit_engine: Engine) -> AuditLog:
    """The log on every kind of engine (make_engine and plain create_engine, several pools)."""
    create_schema(audit_engine)
    return AuditLog(
        audit_engine, clock=ManualClock(datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))
    )


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar_one())


def test_append_chains_events_per_tenant(log: AuditLog) -> None:
    with tenant_scope("acme"):
        first = log.append("invoice.create", actor="user:1", target="invoice/1", outcome="ok")
        second = log.append("invoice.void", actor="user:1", target="invoice/1", outcome="ok")
    with tenant_scope("globex"):
        other = log.append("invoice.create", actor="user:9", target="invoice/7", outcome="ok")
    assert (first.sequence, second.sequence, other.sequence) == (1, 2, 1)
    assert first.prev_hash == GENESIS_HASH == other.prev_hash
    assert second.prev_hash == first.hash
    assert first.occurred_at == datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert first.tenant_id == "acme"
    assert other.tenant_id == "globex"
    result = log.verify()
    assert result.ok
    assert (result.events_checked, result.tenants_checked) == (3, 2)


def test_events_are_frozen_and_read_back_identically(log: AuditLog) -> None:
    with tenant_scope("acme"):
        event = log.append("a.b", actor="x", target="y", outcome="denied", details={"n": [1, 2]})
        with pytest.raises(AttributeError):
            event.action = "other"  # type: ignore[misc]
        (stored,) = log.events()
    assert stored == event
    assert stored.details == {"n": [1, 2]}


def test_events_never_cross_tenants(log: AuditLog) -> None:
    with tenant_scope("acme"):
        log.append("a", actor="x", target="y", outcome="ok")
    with tenant_scope("globex"):
        assert log.events() == []
        log.append("b", actor="x", target="y", outcome="ok")
        assert [e.action for e in log.events()] == ["b"]
        assert [e.action for e in log.events(action="a")] == []


def test_secrets_are_redacted_before_hashing(log: AuditLog) -> None:
    details = {
        "password": "hunter2",
        "nested": {"X-Api-Key": "k", "client_secret": "s", "keep": 1},
        "items": [{"refresh_token": "t"}],
        "Authorization": "Bearer abc",
        "amount": 5,
    }
    with tenant_scope("acme"):
        event = log.append("login", actor="user:1", target="session", outcome="ok", details=details)
        (stored,) = log.events()
    assert stored.details == {
        "password": REDACTED,
        "nested": {"X-Api-Key": REDACTED, "client_secret": REDACTED, "keep": 1},
        "items": [{"refresh_token": REDACTED}],
        "Authorization": REDACTED,
        "amount": 5,
    }
    with log.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT details FROM audit_events").scalar_one()
    assert "hunter2" not in raw
    assert "Bearer" not in raw
    assert event.details == stored.details


def test_missing_tenant_writes_nothing(log: AuditLog) -> None:
    with pytest.raises(TenantRequired):
        log.append("a", actor="x", target="y", outcome="ok")
    assert _count(log.engine) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action": "a" * 129}, "action is 129 characters"),
        ({"actor": "u" * 256}, "actor is 256 characters"),
        ({"target": "t" * 256}, "target is 256 characters"),
        ({"outcome": "o" * 65}, "outcome is 65 characters"),
        ({"action": ""}, "action must not be empty"),
        ({"actor": "a\nb"}, "control characters"),
        ({"details": {"when": datetime.now(UTC)}}, "cannot be encoded as JSON"),
        ({"details": {"x": float("nan")}}, "cannot be encoded as JSON"),
        ({"details": {"blob": "x" * 70_000}}, "limit is 65536"),
        ({"details": ["not", "a", "mapping"]}, "must be a mapping"),
    ],
)
def test_bad_fields_raise_and_write_nothing(
    log: AuditLog, kwargs: dict[str, object], match: str
) -> None:
    fields: dict[str, object] = {"action": "a", "actor": "x", "target": "y", "outcome": "ok"}
    fields.update(kwargs)
    action = fields.pop("action")
    with tenant_scope("acme"), pytest.raises(InvalidAuditField, match=match):
        log.append(action, **fields)  # type: ignore[arg-type]
    assert _count(log.engine) == 0
    with tenant_scope("acme"):
        assert log.append("a", actor="x", target="y", outcome="ok").sequence == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "UPDATE audit_heads SET last_seq = 1",
        "DELETE FROM audit_heads",
    ],
)
def test_database_refuses_changes_to_the_log(log: AuditLog, statement: str) -> None:
    with tenant_scope("acme"):
        for i in range(3):
            log.append("a", actor="x", target=f"t{i}", outcome="ok")
    with pytest.raises(sa.exc.DBAPIError, match=r"append-only|forward"), log.engine.begin() as c:
        c.exec_driver_sql(statement)
    assert log.verify().ok


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_events", "audit_heads"])
def test_postgres_refuses_truncate(pg_engine: Engine, table: str) -> None:
    create_schema(pg_engine)
    with tenant_scope("acme"):
        AuditLog(pg_engine).append("a", actor="x", target="y", outcome="ok")
    with pytest.raises(sa.exc.DBAPIError, match="TRUNCATE refused"), pg_engine.begin() as c:
        c.exec_driver_sql(f"TRUNCATE {table}")


def test_database_refuses_an_event_that_does_not_extend_the_chain(log: AuditLog) -> None:
    with tenant_scope("acme"):
        event = log.append("a", actor="x", target="y", outcome="ok")
    columns = (
        "tenant_id, seq, event_id, occurred_at_us, action, actor, target, outcome, details, "
        "correlation_id, prev_hash, hash"
    )
    forged = (
        f"INSERT INTO audit_events ({columns}) VALUES "
        "('acme', 5, 'e', 1, 'a', 'x', 'y', 'ok', '{}', NULL, :prev, 'f')"
    )
    with pytest.raises(sa.exc.DBAPIError, match="does not extend"), log.engine.begin() as c:
        c.execute(sa.text(forged), {"prev": event.hash})
    assert log.verify().ok


def test_correlation_and_event_ids_come_from_the_context(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ids.DETERMINISTIC_ENV, "true")
    monkeypatch.delenv(ids.SEED_ENV, raising=False)
    ids.reset_configuration()
    with tenant_scope("acme"), ids.id_scope("audit-test"), ids.correlation_scope("req-7"):
        event = log.append("a", actor="x", target="y", outcome="ok")
    assert event.correlation_id == "req-7"
    assert event.event_id == str(ids.derive_uuid(ids.DEFAULT_SEED, "audit-test", "audit-event", 0))


def test_listeners_hear_every_append(log: AuditLog) -> None:
    heard: list[AuditEvent] = []
    add_listener(heard.append)
    try:
        with tenant_scope("acme"):
            event = log.append("a", actor="x", target="y", outcome="ok")
    finally:
        remove_listener(heard.append)
    remove_listener(heard.append)  # unknown listeners are ignored
    with tenant_scope("acme"):
        log.append("b", actor="x", target="y", outcome="ok")
    assert heard == [event]


def test_append_joins_the_callers_transaction(log: AuditLog) -> None:
    from pytest_reliability.db import begin_immediate

    with tenant_scope("acme"):
        with pytest.raises(RuntimeError), begin_immediate(log.engine) as conn:
            log.append("a", actor="x", target="y", outcome="ok", connection=conn)
            raise RuntimeError("roll back the business change and its audit event together")
        assert log.events() == []
        with begin_immediate(log.engine) as conn:
            log.append("a", actor="x", target="y", outcome="ok", connection=conn)
        assert [e.sequence for e in log.events()] == [1]
        assert log.append("b", actor="x", target="y", outcome="ok").sequence == 2
    assert log.verify().ok


def test_threads_share_one_gapless_chain(log: AuditLog) -> None:
    def work(n: int) -> None:
        with tenant_scope("acme"):
            for i in range(20):
                log.append("a", actor=f"thread-{n}", target=f"t{i}", outcome="ok")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with tenant_scope("acme"):
        assert [e.sequence for e in log.events()] == list(range(1, 81))
    assert log.verify("acme").ok


def test_a_second_log_on_the_same_database_continues_the_chain(log: AuditLog) -> None:
    other = AuditLog(log.engine)
    with tenant_scope("acme"):
        log.append("a", actor="x", target="y", outcome="ok")
        other.append("b", actor="x", target="y", outcome="ok")
        log.append("c", actor="x", target="y", outcome="ok")  # its cached head is stale
        assert [e.sequence for e in log.events()] == [1, 2, 3]
    assert log.verify().ok


@pytest.mark.postgres
def test_unreachable_database_is_store_unavailable() -> None:
    engine = make_engine(
        "postgresql://postgres@127.0.0.1:1/test", connect_args={"connect_timeout": 2}
    )
    with tenant_scope("acme"), pytest.raises(StoreUnavailable):
        AuditLog(engine).append("a", actor="x", target="y", outcome="ok")
    with pytest.raises(StoreUnavailable):
        AuditLog(engine).verify()


@pytest.fixture
def memory_log() -> InMemoryAuditLog:
    return InMemoryAuditLog(clock=ManualClock())


def test_in_memory_log_has_the_same_interface(memory_log: InMemoryAuditLog) -> None:
    with tenant_scope("acme"):
        a = memory_log.append("a", actor="x", target="y", outcome="ok", details={"token": "t"})
        b = memory_log.append("b", actor="x", target="y", outcome="ok")
        assert memory_log.events() == [a, b]
        assert memory_log.events(action="b", limit=1) == [b]
    assert a.details == {"token": REDACTED}
    assert b.prev_hash == a.hash
    assert memory_log.verify().ok
    with pytest.raises(InvalidAuditField), tenant_scope("acme"):
        memory_log.append("", actor="x", target="y", outcome="ok")
    with pytest.raises(TenantRequired):
        memory_log.append("a", actor="x", target="y", outcome="ok")
