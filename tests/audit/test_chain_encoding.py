"""The chain's fast row encoding and PostgreSQL's two read paths give what the general ones give.

``chain_bytes`` writes out the canonical encoding of a stored event's one shape; a single byte of
difference from ``canonical_array`` would make every existing log fail to verify, so it is
checked on arbitrary rows (any text, surrogates and control characters included). PostgreSQL
verification reads the chain in chunked-rows mode where libpq allows and through ``COPY``
otherwise; both must find the same breaks and leave the read transaction usable for the point
reads that classify them.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from pytest_reliability._canonical_json import canonical_array
from pytest_reliability.audit import AuditLog, _dialect
from pytest_reliability.audit._chain import HASH_VERSION, chain_bytes
from pytest_reliability.db import create_schema
from pytest_reliability.tenancy import tenant_scope

_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_int = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_anything = st.one_of(_text, _int, st.none(), st.booleans(), st.floats(allow_nan=False))

rows = st.tuples(
    _text, _int, _text, _int, _text, _text, _text, _text, _text, st.none() | _text, _text
)
# What SQLite may hand back when a column was overwritten with another type.
odd_rows = st.tuples(*([_anything] * 11))


def _general(row: tuple[Any, ...]) -> bytes | type[Exception]:
    try:
        return canonical_array([HASH_VERSION, *row])
    except (TypeError, ValueError) as exc:
        return type(exc)


def _fast(row: tuple[Any, ...]) -> bytes | type[Exception]:
    try:
        return chain_bytes(row)
    except (TypeError, ValueError) as exc:
        return type(exc)


@given(rows)
def test_fast_encoding_equals_the_canonical_array(row: tuple[Any, ...]) -> None:
    assert _fast(row) == _general(row)


@given(odd_rows)
def test_rows_of_other_types_encode_or_fail_as_the_canonical_array_does(
    row: tuple[Any, ...],
) -> None:
    assert _fast(row) == _general(row)


def test_a_lone_surrogate_is_refused_with_the_canonical_message() -> None:
    row = ("t", 1, "e", 2, "a\ud800", "x", "y", "ok", "{}", None, "0" * 64)
    with pytest.raises(ValueError, match="lone surrogate"):
        chain_bytes(row)


@pytest.fixture(params=["chunked", "copy"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Verify through the chunked-rows path (where libpq allows it) or through ``COPY``."""
    if request.param == "chunked" and not _dialect._chunked_rows():
        pytest.skip("chunked rows need libpq 17 or newer; this psycopg loads an older libpq")
    monkeypatch.setattr(_dialect, "_chunked_rows", lambda: request.param == "chunked")
    return str(request.param)


@pytest.mark.postgres
def test_both_postgres_read_paths_verify_and_classify_breaks(
    pg_engine: Engine, read_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks smaller than the chain, so a break is met with rows still unread on the wire.
    monkeypatch.setattr(_dialect, "_STREAM_CHUNK", 7)
    create_schema(pg_engine)
    log = AuditLog(pg_engine)
    with tenant_scope("acme"):
        for i in range(40):
            log.append("invoice.create", actor="u", target=f"inv/{i}", outcome="ok")
    clean = log.verify()
    assert clean.ok
    assert clean.events_checked == 40

    with pg_engine.connect() as conn:
        trans = conn.begin()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        # Event 12 moved to sequence 30's place: telling "reordered" needs point reads on the
        # same connection after the stream stopped early.
        conn.execute(sa.text("UPDATE audit_events SET seq = -1 WHERE seq = 30"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 30 WHERE seq = 12"))
        conn.execute(sa.text("UPDATE audit_events SET seq = 12 WHERE seq = -1"))
        result = log.verify(connection=conn)
        assert not result.ok
        assert result.break_ is not None
        assert (result.break_.kind, result.break_.sequence) == ("reordered", 12), result.break_
        # The read transaction survived the early stop: the connection still answers.
        assert conn.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one() == 40
        trans.rollback()
    assert log.verify().ok


@pytest.mark.postgres
def test_verifying_in_the_callers_transaction_leaves_its_sort_setting_alone(
    pg_engine: Engine, read_path: str
) -> None:
    # Verification reads the chain in index order (no whole-chain sort when statistics are
    # stale) by turning sorts off for its own reads; the caller's transaction gets its value back.
    create_schema(pg_engine)
    log = AuditLog(pg_engine)
    with tenant_scope("acme"):
        for i in range(5):
            log.append("a", actor="u", target=f"t{i}", outcome="ok")
    with pg_engine.connect() as conn:
        trans = conn.begin()
        conn.exec_driver_sql("SET LOCAL enable_sort = on")
        assert log.verify(connection=conn).ok
        assert conn.exec_driver_sql("SHOW enable_sort").scalar_one() == "on"
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        assert log.verify(connection=conn).ok
        assert conn.exec_driver_sql("SHOW enable_sort").scalar_one() == "off"
        trans.rollback()


@pytest.mark.postgres
def test_the_chain_is_read_without_sorting_it(pg_engine: Engine, read_path: str) -> None:
    from pytest_reliability.audit._dialect import _POSTGRES, _index_order

    create_schema(pg_engine)
    with pg_engine.connect() as conn:
        trans = conn.begin()
        # A bulk load the planner has no statistics for (as after a restore, before ANALYZE):
        # left alone it sorts the whole chain, on disk, before returning the first row.
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(
            "INSERT INTO audit_events (tenant_id, seq, event_id, occurred_at_us, action, actor,"
            " target, outcome, details, correlation_id, prev_hash, hash)"
            " SELECT 'acme', g, 'e' || g, g, 'a', 'u', 't', 'ok', repeat('x', 200), NULL,"
            " md5(g::text), md5(g::text) FROM generate_series(1, 20000) AS g"
        )
        dbapi: Any = conn.connection.driver_connection
        sql = "EXPLAIN " + _POSTGRES.chain_sql.replace("%s", "'acme'")
        sorted_first = [str(r[0]) for r in conn.exec_driver_sql(sql)]
        with _index_order(dbapi):
            streamed = [str(r[0]) for r in conn.exec_driver_sql(sql)]
        trans.rollback()
    assert sorted_first[0].startswith("Sort "), sorted_first  # what the setting prevents
    assert streamed[0].startswith("Incremental Sort"), streamed
    assert any("Index Scan" in line for line in streamed), streamed
