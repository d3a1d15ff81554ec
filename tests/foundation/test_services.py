"""The harness starts a PostgreSQL of its own where no server runs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness import services


@pytest.mark.slow
def test_private_postgres_cluster_starts_answers_and_stops() -> None:
    state = Path(tempfile.mkdtemp(prefix="reliability-pg-test-"))
    try:
        url = services.start_private_postgres(state)
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert url.endswith("/test")
        assert services.postgres_answers(url)
        assert services.start_private_postgres(state) == url, "a running cluster is reused"

        from pytest_reliability.audit import AuditLog
        from pytest_reliability.db import create_schema, make_engine
        from pytest_reliability.tenancy import tenant_scope

        engine = make_engine(url)
        create_schema(engine)
        with tenant_scope("acme"):
            AuditLog(engine).append("a", actor="x", target="y", outcome="ok")
        assert AuditLog(engine).verify().ok
        engine.dispose()
    finally:
        services.stop_private_postgres(state)
        shutil.rmtree(state, ignore_errors=True)
    assert not services.postgres_answers(url)


def test_explicit_url_that_does_not_answer_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(services.POSTGRES_URL_ENV, "postgresql+psycopg://postgres@127.0.0.1:1/x")
    with pytest.raises(RuntimeError, match="does not answer"):
        services.postgres_url()
