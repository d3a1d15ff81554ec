"""An audit append on a frozen PostgreSQL fails loudly within its timeout, and writes nothing.

A frozen server (SIGSTOP, a paused container) keeps its kernel's TCP stack answering, so the
socket never errors and a server-side timeout never runs: without the client-side deadline the
append would wait as long as the freeze lasts. A fault proxy holding every byte stands in for it.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from pytest_reliability.audit import AuditLog
from pytest_reliability.chaos_infra import FaultProxy
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.errors import ConfigurationError, StoreUnavailable
from pytest_reliability.tenancy import tenant_scope

pytestmark = [pytest.mark.postgres]


def test_an_append_to_a_frozen_server_raises_within_its_timeout_and_recovers(pg_url: str) -> None:
    url = make_url(pg_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(proxied)
        try:
            create_schema(engine)
            log = AuditLog(engine, timeout=0.5)
            with tenant_scope("acme"):
                log.append("invoice.create", actor="a", target="i/1", outcome="ok")
                proxy.half_open()  # open connections go silent: a frozen server
                started = time.monotonic()
                with pytest.raises(StoreUnavailable, match=r"did not answer within 0\.5 s"):
                    log.append("invoice.create", actor="a", target="i/2", outcome="ok")
                assert time.monotonic() - started < 2.0
                proxy.restore()
                # The cut connection was thrown away: the next append gets a live one.
                log.append("invoice.create", actor="a", target="i/3", outcome="ok")
                targets = [e.target for e in log.events()]
                # i/2's outcome is unknown to its caller, as with any commit whose answer is
                # lost: the server may have committed it. The chain is whole either way.
                assert targets in (["i/1", "i/3"], ["i/1", "i/2", "i/3"])
                assert log.verify("acme").ok
        finally:
            engine.dispose()


def test_an_audit_timeout_must_be_a_bounded_number_of_seconds(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        for bad in (0, -1, 301, float("nan"), True):
            with pytest.raises(ConfigurationError, match="store timeout"):
                AuditLog(engine, timeout=bad)
    finally:
        engine.dispose()


def test_the_default_timeout_bounds_appends(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        assert AuditLog(engine).timeout == 5.0
    finally:
        engine.dispose()
