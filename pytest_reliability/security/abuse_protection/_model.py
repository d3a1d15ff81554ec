"""The values abuse protection speaks in: tiers, signals and decisions.

A :class:`Signal` says who did what (a subject such as a client IP, an API key or an account
name; a request, a failed login or a response status), a :class:`Decision` what the service
should do about it. Both are immutable; a signal is validated when it is made, so a malformed
one never reaches a store.
"""

from __future__ import annotations

import hashlib
import ipaddress
from enum import IntEnum, StrEnum
from typing import Final, NamedTuple, final

from pytest_reliability.errors import InvalidAbusePolicy, InvalidSignal

__all__ = [
    "SUBJECT_MAX_LENGTH",
    "Decision",
    "Signal",
    "SignalKind",
    "Tier",
    "subject_label",
]

SUBJECT_MAX_LENGTH: Final = 256
"""The longest subject or account accepted (an IPv6 address, an API key id, an e-mail)."""
PATH_MAX_LENGTH: Final = 2048
"""Paths longer than this are cut before they are counted (never stored in full anyway)."""


class Tier(IntEnum):
    """How a subject is treated, in escalation order: each tier includes the ones below."""

    NORMAL = 0
    """Allowed; nothing detected."""
    WARN = 1
    """Allowed, but a detector fired: watched, logged, one step from throttling."""
    THROTTLE = 2
    """Rate-limited: requests over the throttle rate get 429 with ``Retry-After``."""
    BLOCK = 3
    """Everything denied (403) until the block expires."""

    @classmethod
    def parse(cls, value: object) -> Tier:
        """Return the tier named ``value`` (``"block"``, ``"BLOCK"``, a Tier or 0-3)."""
        if isinstance(value, Tier):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return cls(value)
        raise InvalidAbusePolicy(
            f"unknown tier {value!r}: use one of {', '.join(t.name for t in cls)}"
        )


class SignalKind(StrEnum):
    """What a signal reports."""

    REQUEST = "request"
    """A request arrived (path known): burst, scraping and probe detectors count it."""
    AUTH_FAILURE = "auth_failure"
    """An authentication failed for ``account``: the auth spam detector counts it."""
    RESPONSE = "response"
    """A response was sent with ``status``: the error-share detector counts it."""


# The kinds as plain names for the hot paths: reading a member through the enum class goes
# through its metaclass (some 70 ns in Python 3.11), once or more on every request.
_REQUEST: Final = SignalKind.REQUEST
_AUTH_FAILURE: Final = SignalKind.AUTH_FAILURE
_RESPONSE: Final = SignalKind.RESPONSE


def _check_text(what: str, value: object, *, limit: int = SUBJECT_MAX_LENGTH) -> str:
    if not isinstance(value, str):
        raise InvalidSignal(f"signal {what} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidSignal(f"signal {what} must not be empty")
    if len(value) > limit:
        raise InvalidSignal(f"signal {what} is {len(value)} characters long; the limit is {limit}")
    if not value.isprintable() or " " in value:  # isprintable refuses other whitespace
        raise InvalidSignal(f"signal {what} has whitespace or non-printable characters")
    return value


class _SignalFields(NamedTuple):
    kind: SignalKind
    subject: str
    path: str | None
    status: int | None
    account: str | None


_new = tuple.__new__


def _fine(text: object) -> bool:
    # The common case in one expression; _check_text says what is wrong otherwise.
    return (
        type(text) is str
        and 0 < len(text) <= SUBJECT_MAX_LENGTH
        and text.isprintable()  # refuses every whitespace but the space
        and " " not in text
    )


@final
class Signal(_SignalFields):
    """One event about one subject. Build it with :meth:`request`, :meth:`auth_failure` or
    :meth:`response`; the tenant comes from the tenant context when it is decided.

    ``subject`` is who is acting (client IP, API key id, account), 1-256 printable characters
    without whitespace. ``account`` (auth failures) is the account the attempt named. A signal
    is an immutable tuple: it is made on every request, so it is cheap to make.
    """

    __slots__ = ()

    def __new__(
        cls,
        kind: SignalKind | str,
        subject: str,
        path: str | None = None,
        status: int | None = None,
        account: str | None = None,
    ) -> Signal:
        """Validate and build; a malformed field raises :class:`InvalidSignal`."""
        if type(kind) is not SignalKind:
            try:
                kind = SignalKind(str(kind)) if isinstance(kind, str) else SignalKind(kind)
            except ValueError:
                raise InvalidSignal(f"unknown signal kind {kind!r}") from None
        if not _fine(subject):
            _check_text("subject", subject)
        if path is not None:
            if type(path) is not str:
                if not isinstance(path, str):
                    raise InvalidSignal(f"signal path must be a str, not {type(path).__name__}")
                path = str(path)
            if len(path) > PATH_MAX_LENGTH:
                path = path[:PATH_MAX_LENGTH]
        if status is not None and (type(status) is not int or not 100 <= status <= 599):
            raise InvalidSignal(f"signal status {status!r} is not an HTTP status 100-599")
        if account is not None and not _fine(account):
            _check_text("account", account)
        if kind is _AUTH_FAILURE and account is None:
            raise InvalidSignal("an auth_failure signal needs the account it named")
        if kind is _RESPONSE and status is None:
            raise InvalidSignal("a response signal needs its status")
        return tuple.__new__(cls, (kind, subject, path, status, account))

    @classmethod
    def request(cls, subject: str, path: str = "/") -> Signal:
        """A request from ``subject`` for ``path``."""
        if (
            # _fine(subject), written out: one call less on every request.
            type(subject) is str
            and 0 < len(subject) <= SUBJECT_MAX_LENGTH
            and subject.isprintable()
            and " " not in subject
            and type(path) is str
            and len(path) <= PATH_MAX_LENGTH
        ):
            # Made on every request: the checks __new__ would make, without its generality.
            return _new(cls, (_REQUEST, subject, path, None, None))
        return cls(SignalKind.REQUEST, subject, path)

    @classmethod
    def auth_failure(cls, subject: str, account: str) -> Signal:
        """A failed authentication by ``subject`` naming ``account``."""
        return cls(SignalKind.AUTH_FAILURE, subject, None, None, account)

    @classmethod
    def response(cls, subject: str, status: int, path: str | None = None) -> Signal:
        """A response with ``status`` sent to ``subject``."""
        return cls(SignalKind.RESPONSE, subject, path, status)


class _DecisionFields(NamedTuple):
    allowed: bool
    tier: Tier | None
    status: int
    retry_after: float = 0.0
    detector: str | None = None
    reason: str = ""
    escalated_from: Tier | None = None
    store_unavailable: bool = False


@final
class Decision(_DecisionFields):
    """What to do with one signal.

    ``allowed`` is the answer; ``status`` the HTTP status a middleware sends when it is not
    (429 throttled, 403 blocked, 503 store unavailable; 200 when allowed). ``tier`` is the
    subject's tier after the signal, ``None`` when the store could not say. ``retry_after`` is
    in seconds (0 when allowed). ``detector`` and ``reason`` say what escalated or denied.
    An immutable tuple, cheap to make: there is one per request.
    """

    __slots__ = ()

    @property
    def escalated(self) -> bool:
        """Whether this signal raised the subject's tier."""
        return (
            self.escalated_from is not None
            and self.tier is not None
            and self.tier > self.escalated_from
        )

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value (whole seconds, at least 1) for a denial, else ``None``."""
        if self.allowed:
            return None
        return str(max(1, int(-(-self.retry_after // 1))))


def subject_label(subject: str) -> str:
    """How a subject appears in audit events and reports: an IP address as itself, anything
    else (an API key, an account) as ``sha256:`` and 16 hex digits, so no secret is logged."""
    try:
        return str(ipaddress.ip_address(subject))
    except ValueError:
        return "sha256:" + hashlib.sha256(subject.encode()).hexdigest()[:16]


def member_hash(value: str) -> str:
    """A short digest of a counted value (a path, an account): stores never keep the value."""
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()
