"""The attempt a handler runs inside: its transaction handle, deferred effects and response."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, final

from pytest_reliability.errors import ConfigurationError
from pytest_reliability.idempotency._model import Outcome, Scope
from pytest_reliability.idempotency._store import Deferred

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Attempt", "current_attempt"]

_UNSET: Any = object()
_current: ContextVar[Attempt | None] = ContextVar("pytest_reliability_attempt", default=None)


@final
class Attempt:
    """One delivery of an idempotent operation, as its handler sees it.

    * ``replayed``: True when the key was already completed and ``response`` is the stored one;
      the handler does not run then.
    * ``connection``: on the SQL store in synchronous code, the SQLAlchemy ``Connection`` of the
      transaction that will also mark the record COMPLETED: rows written through it commit or
      roll back with the record. None on the other stores and in asyncio.
    * ``defer(fn)``: run ``fn(handle)`` inside the completing transaction on every store (the SQL
      connection, the Redis ``MULTI`` pipeline, or None in memory); effects deferred this way
      happen if and only if the record becomes COMPLETED.
    * ``fence``: the fencing counter of this lease (1, or more after takeovers); pass it to
      external systems that can reject stale writers.
    """

    __slots__ = (
        "_deferred",
        "_response",
        "_session",
        "connection",
        "fence",
        "replayed",
        "scope",
        "takeover",
    )

    def __init__(
        self,
        scope: Scope,
        *,
        replayed: bool,
        fence: int = 0,
        takeover: bool = False,
        response: Any = _UNSET,
        connection: Any = None,
    ) -> None:
        self.scope = scope
        self.replayed = replayed
        self.fence = fence
        self.takeover = takeover
        self.connection = connection
        self._response = response
        self._deferred: list[Deferred] = []
        self._session: Any = None

    @property
    def operation(self) -> str:
        """The operation name."""
        return self.scope.operation

    @property
    def key_hash(self) -> str:
        """SHA-256 hex of the key (the raw key is never kept)."""
        return self.scope.key_hash

    @property
    def completed(self) -> bool:
        """Whether a response is set (stored, or given to :meth:`complete`)."""
        return self._response is not _UNSET

    @property
    def response(self) -> Any:
        """The response: the replayed one, or the one given to :meth:`complete`."""
        return None if self._response is _UNSET else self._response

    def complete(self, response: Any) -> None:
        """Set the response stored with the COMPLETED record (a JSON value)."""
        if self.replayed:
            raise ConfigurationError("a replayed attempt already has its stored response")
        self._response = response

    def stored(self, response: Any) -> None:
        """Replace the response by its stored JSON form (the engine calls this)."""
        self._response = response

    def session(self) -> Session:
        """An ORM ``Session`` joined to :attr:`connection`'s transaction (SQL store, sync only).

        Objects added to it are flushed just before the record is marked COMPLETED, in the same
        transaction, so they commit or roll back with it. Do not commit it yourself.
        """
        if self._session is None:
            if self.connection is None:
                raise ConfigurationError("an ORM session needs the SQL store in synchronous code")
            from sqlalchemy.orm import Session

            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session  # type: ignore[no-any-return]  # set just above

    def flush(self) -> None:
        """Flush and close the ORM session, if one was opened (the engine calls this)."""
        if self._session is not None:
            session, self._session = self._session, None
            try:
                session.flush()
            finally:
                session.close()

    def defer(self, effect: Deferred) -> None:
        """Run ``effect(handle)`` inside the transaction that completes the record."""
        if self.replayed:
            raise ConfigurationError("a replayed attempt runs no effects")
        self._deferred.append(effect)

    @property
    def deferred(self) -> tuple[Deferred, ...]:
        """The effects deferred so far."""
        return tuple(self._deferred)

    def outcome(self) -> Outcome:
        """The :class:`Outcome` of this attempt."""
        return Outcome(
            response=self.response,
            replayed=self.replayed,
            operation=self.scope.operation,
            key_hash=self.scope.key_hash,
            fence=self.fence,
            takeover=self.takeover,
        )


def current_attempt() -> Attempt | None:
    """Return the attempt whose handler is running in this context, or None.

    Decorated functions reach their transaction through it
    (``current_attempt().connection``).
    """
    return _current.get()


@contextmanager
def attempt_scope(attempt: Attempt) -> Iterator[Attempt]:
    """Make ``attempt`` the current one for the block."""
    token = _current.set(attempt)
    try:
        yield attempt
    finally:
        _current.reset(token)
