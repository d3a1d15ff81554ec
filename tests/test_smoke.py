from sqlalchemy.engine import Engine

from pytest_reliability.audit import AuditLog
from pytest_reliability.db import create_schema
from pytest_reliability.tenancy import tenant_scope


def test_append_and_verify(engine: Engine) -> None:
    create_schema(engine)
    log = AuditLog(engine)
    with tenant_scope("acme"):
        log.append("a", actor="x", target="y", outcome="ok")
        assert log.verify("acme").ok
