"""The SQL idempotency store's statements, built once: building SQL expressions costs more
than running them."""

from __future__ import annotations

import sqlalchemy as sa

from pytest_reliability.idempotency._model import Scope, State
from pytest_reliability.idempotency._tables import idempotency_records as t

__all__ = ["_CLAIM_ROUNDS", "_COLUMNS", "_FINISH", "_PG_CLAIM", "_PG_FINISH", "_pk"]

_COLUMNS = (
    t.c.state,
    t.c.fingerprint,
    t.c.token,
    t.c.fence,
    t.c.lease_expires_ms,
    t.c.expires_ms,
    t.c.response,
    t.c.error,
)
# A key can be released and re-claimed between our INSERT and SELECT; a few rounds settle it.
_CLAIM_ROUNDS = 5

# The hot path's statements, built once: building SQL expressions costs more than running them.
_b = sa.bindparam
_HELD = sa.and_(
    t.c.tenant_id == _b("p_tenant"),
    t.c.operation == _b("p_operation"),
    t.c.key_hash == _b("p_key"),
    t.c.token == _b("p_token"),
    t.c.state == State.IN_PROGRESS.value,
)
# PostgreSQL's hot path as driver SQL: ``exec_driver_sql`` skips statement compilation yet still
# fires SQLAlchemy's events (chaos injection and instrumentation see it like any statement).
_PG_CLAIM = (
    "INSERT INTO idempotency_records (tenant_id, operation, key_hash, state, fingerprint, token, "
    "fence, lease_expires_ms, expires_ms, created_ms) VALUES (%s, %s, %s, 'IN_PROGRESS', %s, %s, "
    "1, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING fence"
)
_PG_FINISH = (
    "UPDATE idempotency_records SET state = %s, response = %s, error = %s, expires_ms = %s "
    "WHERE tenant_id = %s AND operation = %s AND key_hash = %s AND token = %s "
    "AND state = 'IN_PROGRESS'"
)
_FINISH = (
    t.update()
    .where(_HELD)
    .values(state=_b("p_state"), response=_b("p_response"), error=_b("p_error"))
    .values(expires_ms=_b("p_expires"))
)


def _pk(scope: Scope) -> sa.ColumnElement[bool]:
    return sa.and_(
        t.c.tenant_id == scope.tenant,
        t.c.operation == scope.operation,
        t.c.key_hash == scope.key_hash,
    )
