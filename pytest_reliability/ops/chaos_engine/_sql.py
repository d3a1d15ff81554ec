"""Database faults through SQLAlchemy events: a statement fails as the driver would fail it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = "_reliability_chaos_fault"


def fail_statements(
    engine: Any, *, disconnect: bool, should_fail: Callable[[], bool], label: str
) -> Callable[[], None]:
    """Make ``engine``'s statements raise the driver's OperationalError when ``should_fail()``.

    The error is the DBAPI's own class, raised before the cursor executes, so SQLAlchemy wraps it
    as ``sqlalchemy.exc.OperationalError`` exactly as for a real failure. With ``disconnect`` a
    ``handle_error`` listener marks it as a disconnect, so the pool invalidates the connection
    (``connection_invalidated`` is true on the raised error). Returns the undo function.
    """
    # Imported here: the engine module stays importable without SQLAlchemy loaded.
    from sqlalchemy import event

    dbapi = engine.dialect.loaded_dbapi
    kind = "disconnect" if disconnect else "operational"

    def before_cursor_execute(*_args: Any) -> None:
        if should_fail():
            error = dbapi.OperationalError(f"chaos: injected {kind} error ({label})")
            setattr(error, _MARK, True)
            raise error

    def handle_error(context: Any) -> None:
        if getattr(context.original_exception, _MARK, False):
            context.is_disconnect = True

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    if disconnect:
        event.listen(engine, "handle_error", handle_error)

    def undo() -> None:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
        if disconnect:
            event.remove(engine, "handle_error", handle_error)

    return undo
