"""Tampering behind the log's back is found: every single-row change, deletion, insertion, swap.

Each example disables the append-only triggers inside a transaction (as a superuser could), makes
one change, verifies inside that transaction, and rolls back, so one chain serves every example.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection, Engine

from pytest_reliability.audit import AuditLog, VerifyResult
from pytest_reliability.audit._chain import ChainRow, event_hash
from pytest_reliability.db import create_schema
from pytest_reliability.errors import AuditIntegrityError
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.audit

N = 8
_SQLITE_TRIGGERS = (
    "audit_events_no_update",
    "audit_events_no_delete",
    "audit_events_extend_head",
    "audit_events_advance_head",
    "audit_heads_forward_only",
    "audit_heads_no_delete",
    "audit_heads_start_at_one",
)
_TEXT_COLUMNS = ("event_id", "action", "actor", "target", "outcome", "prev_hash", "hash")


@dataclass(frozen=True)
class Tamper:
    """One change made behind the log's back, and the break verify must report."""

    kind: str
    seq: int
    column: str = ""
    other: int = 0

    @property
    def expected(self) -> tuple[str, int] | None:
        if self.kind == "change":
            return None if self.column == "tenant_id" else ("changed", self.seq)
        if self.kind == "delete":
            return ("deleted", self.seq)
        if self.kind in ("append", "insert_before"):
            return ("inserted", self.seq)
        return ("reordered", self.seq)


tampers = st.one_of(
    st.builds(
        Tamper,
        kind=st.just("change"),
        seq=st.integers(1, N),
        column=st.sampled_from(
            (*_TEXT_COLUMNS, "occurred_at_us", "details", "correlation_id", "tenant_id")
        ),
    ),
    st.builds(Tamper, kind=st.just("delete"), seq=st.integers(1, N)),
    st.builds(Tamper, kind=st.just("append"), seq=st.just(N + 1)),
    st.builds(Tamper, kind=st.just("insert_before"), seq=st.integers(-3, 0)),
    st.integers(1, N - 1).flatmap(
        lambda i: st.builds(
            Tamper, kind=st.just("swap"), seq=st.just(i), other=st.integers(i + 1, N)
        )
    ),
)


@pytest.fixture
def chain(engine: Engine) -> AuditLog:
    create_schema(engine)
    log = AuditLog(engine)
    with tenant_scope("acme"):
        for i in range(N):
            log.append(
                "invoice.create",
                actor="user:1",
                target=f"invoice/{i}",
                outcome="ok",
                details={"amount": i},
            )
    with tenant_scope("globex"):
        for _ in range(3):
            log.append("login", actor="user:2", target="session", outcome="ok")
    return log


def _disable_triggers(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for name in _SQLITE_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER {name}")  # transactional in SQLite
    else:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")


def _row(conn: Connection, seq: int) -> ChainRow:
    cols = ", ".join(ChainRow._fields)
    found = conn.execute(
        sa.text(f"SELECT {cols} FROM audit_events WHERE tenant_id = 'acme' AND seq = :s"),
        {"s": seq},
    ).one()
    return ChainRow(*found)


def _apply(conn: Connection, t: Tamper) -> None:
    where = "WHERE tenant_id = 'acme' AND seq = :s"
    if t.kind == "change":
        value: object
        if t.column == "occurred_at_us":
            value = _row(conn, t.seq).occurred_at_us + 1
        elif t.column == "details":
            value = '{"amount":1000000}'
        elif t.column == "correlation_id":
            value = "forged-correlation"
        elif t.column == "tenant_id":
            value = "globex"
            conn.execute(sa.text("UPDATE audit_events SET seq = seq + 100 " + where), {"s": t.seq})
            conn.execute(
                sa.text("UPDATE audit_events SET tenant_id = 'globex' WHERE seq = :s"),
                {"s": t.seq + 100},
            )
            return
        elif t.column in ("prev_hash", "hash"):
            value = "e" * 64
        else:
            value = getattr(_row(conn, t.seq), t.column) + "!"
        conn.execute(
            sa.text(f"UPDATE audit_events SET {t.column} = :v " + where), {"v": value, "s": t.seq}
        )
    elif t.kind == "delete":
        conn.execute(sa.text("DELETE FROM audit_events " + where), {"s": t.seq})
    elif t.kind in ("append", "insert_before"):
        # The worst case: a forger who links and hashes the event correctly.
        last = _row(conn, N)
        partial = (
            "acme",
            t.seq,
            "forged",
            last.occurred_at_us + 1,
            "refund",
            "mallory",
            "invoice/0",
            "ok",
            "{}",
            None,
            last.hash,
        )
        row = ChainRow(*partial, event_hash(partial))
        conn.execute(
            sa.text(
                f"INSERT INTO audit_events ({', '.join(ChainRow._fields)}) VALUES "
                f"({', '.join(':' + f for f in ChainRow._fields)})"
            ),
            row._asdict(),
        )
    else:  # swap the positions of two events
        conn.execute(sa.text("UPDATE audit_events SET seq = -99 " + where), {"s": t.seq})
        conn.execute(
            sa.text("UPDATE audit_events SET seq = :a " + where), {"a": t.seq, "s": t.other}
        )
        conn.execute(sa.text("UPDATE audit_events SET seq = :b " + where), {"b": t.other, "s": -99})


def _verify_tampered(log: AuditLog, t: Tamper) -> VerifyResult:
    with log.engine.connect() as conn:
        trans = conn.begin()
        try:
            _disable_triggers(conn)
            _apply(conn, t)
            return log.verify(connection=conn)
        finally:
            trans.rollback()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(t=tampers)
def test_every_single_row_tamper_is_found(chain: AuditLog, t: Tamper) -> None:
    result = _verify_tampered(chain, t)
    assert not result.ok, f"{t} went unnoticed"
    assert result.break_ is not None
    if t.expected is not None:
        assert result.break_.tenant_id == "acme"
        assert (result.break_.kind, result.break_.sequence) == t.expected, str(result.break_)
    with pytest.raises(AuditIntegrityError) as info:
        result.raise_for_break()
    assert info.value.kind == result.break_.kind
    assert chain.verify().ok, "the rollback must leave the real log intact"


def test_untampered_chain_verifies(chain: AuditLog) -> None:
    result = chain.verify()
    assert result.ok
    assert result.events_checked == N + 3
    assert chain.verify("globex").events_checked == 3


@pytest.mark.postgres
def test_a_forked_chain_is_found(pg_engine: Engine) -> None:
    create_schema(pg_engine)
    log = AuditLog(pg_engine)
    with tenant_scope("acme"):
        for i in range(3):
            log.append("a", actor="x", target=f"t{i}", outcome="ok")
    with pg_engine.connect() as conn:
        trans = conn.begin()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_seq")
        first = _row(conn, 1)
        partial = (
            "acme",
            2,
            "fork",
            first.occurred_at_us,
            "a",
            "x",
            "t-fork",
            "ok",
            "{}",
            None,
            first.hash,
        )
        row = ChainRow(*partial, event_hash(partial))
        conn.execute(
            sa.text(
                f"INSERT INTO audit_events ({', '.join(ChainRow._fields)}) VALUES "
                f"({', '.join(':' + f for f in ChainRow._fields)})"
            ),
            row._asdict(),
        )
        result = log.verify(connection=conn)
        trans.rollback()
    assert result.break_ is not None
    assert (result.break_.kind, result.break_.sequence) == ("forked", 2)
