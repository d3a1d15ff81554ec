"""WSGI and ASGI middleware: one decision per request, before the application runs.

A denied request never reaches the application: THROTTLE answers ``429`` with ``Retry-After``,
BLOCK ``403``, a store that cannot answer ``503`` with ``Retry-After`` (fail closed), and so
does an unexpected error while deciding. After an allowed request the response status is
reported too (when a detector counts responses, e.g. the error share of the scraping detector).

Who the subject is comes from a :class:`SubjectExtractor`: the peer address, or the client
address a *trusted* proxy put in ``X-Forwarded-For``; the header of any other peer is ignored,
so a client cannot pick its own subject. An API key header, when configured, makes the key the
subject (as a digest: the key itself is never stored).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final, final

from pytest_reliability.errors import ConfigurationError, InvalidSignal
from pytest_reliability.security.abuse_protection._model import Decision, Signal
from pytest_reliability.security.abuse_protection._protection import AbuseProtection
from pytest_reliability.tenancy import tenant_scope, validate_tenant_id

__all__ = ["AbuseASGIMiddleware", "AbuseWSGIMiddleware", "SubjectExtractor"]

_log = logging.getLogger("pytest_reliability.security.abuse")
UNKNOWN_PEER: Final = "unknown-peer"
"""The subject of requests with no peer address (they share one set of counters)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


@final
class SubjectExtractor:
    """Works out a request's subject.

    * ``trusted_proxies``: CIDR networks of the proxies in front of the service. Only when
      the peer is one of them is ``forwarded_header`` read, right to left, skipping trusted
      hops: the first untrusted address is the client. A malformed entry stops the walk and
      the last trusted hop is used (fail safe: a proxy is never confused with its clients).
    * ``api_key_header``: when set and present, the subject is ``key:`` and a digest of it.
    """

    __slots__ = ("api_key_header", "forwarded_header", "trusted")

    def __init__(
        self,
        *,
        trusted_proxies: Iterable[str] = (),
        forwarded_header: str = "x-forwarded-for",
        api_key_header: str | None = None,
    ) -> None:
        trusted: list[Network] = []
        for net in trusted_proxies:
            try:
                trusted.append(ipaddress.ip_network(net, strict=False))
            except (TypeError, ValueError):
                raise ConfigurationError(f"trusted proxy {net!r} is not a CIDR network") from None
        self.trusted = tuple(trusted)
        self.forwarded_header = forwarded_header.lower()
        self.api_key_header = api_key_header.lower() if api_key_header else None

    def _is_trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == n.version and ip in n for n in self.trusted)

    def subject(self, peer: str | None, header: Callable[[str], str | None]) -> str:
        """The subject of a request from ``peer``; ``header(name)`` reads a request header."""
        if self.api_key_header is not None:
            key = header(self.api_key_header)
            if key:
                return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
        if not peer:
            return UNKNOWN_PEER
        address = _ip(peer)
        if address is None:
            return peer[:256] if peer.isprintable() and " " not in peer else UNKNOWN_PEER
        if not self.trusted or not self._is_trusted(address):
            return str(address)  # X-Forwarded-For from an untrusted peer is ignored
        client = address
        forwarded = header(self.forwarded_header) or ""
        for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
            ip = _ip(hop)
            if ip is None:
                break
            client = ip
            if not self._is_trusted(ip):
                break
        return str(client)


TenantOf = str | Callable[[Any], str]


def _tenant(tenant: TenantOf, source: Any) -> str:
    return validate_tenant_id(tenant(source) if callable(tenant) else tenant)


def _denial(decision: Decision) -> tuple[int, list[tuple[str, str]], bytes]:
    reason = {429: "Too Many Requests", 403: "Forbidden", 503: "Service Unavailable"}
    status = decision.status if decision.status in reason else 503
    body = json.dumps({"error": reason[status].lower(), "retry_after": decision.retry_after})
    headers = [("content-type", "application/json")]
    retry = decision.retry_after_header()
    if retry is not None and status in (429, 503, 403):
        headers.append(("retry-after", retry))
    return status, headers, body.encode()


_BAD_REQUEST = (400, [("content-type", "application/json")], b'{"error": "bad request"}')
_UNAVAILABLE = Decision(False, None, 503, 5.0, "middleware", "deciding failed",
                        store_unavailable=True)  # fmt: skip


def _observes_responses(protection: AbuseProtection) -> bool:
    probe = Signal.response("probe", 404)
    return any(list(d.checks(probe)) for d in protection.policy.detectors)


class _Common:
    __slots__ = ("extractor", "observe", "protection", "tenant")

    def __init__(
        self,
        protection: AbuseProtection,
        tenant: TenantOf,
        extractor: SubjectExtractor | None,
        observe_responses: bool | None,
    ) -> None:
        if not isinstance(protection, AbuseProtection):
            raise ConfigurationError("the abuse middleware needs an AbuseProtection")
        self.protection = protection
        self.tenant = tenant
        self.extractor = extractor if extractor is not None else SubjectExtractor()
        self.observe = (
            _observes_responses(protection) if observe_responses is None else observe_responses
        )


@final
class AbuseWSGIMiddleware(_Common):
    """Wrap a WSGI application: ``app.wsgi_app = AbuseWSGIMiddleware(app.wsgi_app, ...)``.

    ``tenant`` is a tenant id, or ``tenant(environ)`` returning one.
    """

    __slots__ = ("app",)

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        protection: AbuseProtection,
        *,
        tenant: TenantOf,
        extractor: SubjectExtractor | None = None,
        observe_responses: bool | None = None,
    ) -> None:
        super().__init__(protection, tenant, extractor, observe_responses)
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Decide, then call the application or answer the denial."""

        def header(name: str) -> str | None:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return value if isinstance(value, str) else None

        try:
            tenant = _tenant(self.tenant, environ)
            subject = self.extractor.subject(environ.get("REMOTE_ADDR"), header)
            signal = Signal.request(subject, str(environ.get("PATH_INFO") or "/"))
        except (InvalidSignal, ValueError):
            return self._answer(start_response, _BAD_REQUEST)
        except Exception:  # a tenant resolver that failed: nobody is let through unknown
            _log.exception("abuse middleware could not read the request; answering 503")
            return self._answer(start_response, _denial(_UNAVAILABLE))
        try:
            with tenant_scope(tenant):
                decision = self.protection.decide(signal)
        except Exception:  # whatever failed, the request is not let through
            _log.exception("abuse decision failed; answering 503")
            decision = _UNAVAILABLE
        if not decision.allowed:
            return self._answer(start_response, _denial(decision))
        if not self.observe:
            return self.app(environ, start_response)

        def observed(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            self._observe(tenant, subject, status)
            return start_response(status, headers, *exc)

        return self.app(environ, observed)

    def _observe(self, tenant: str, subject: str, status: str) -> None:
        try:
            with tenant_scope(tenant):
                self.protection.decide(Signal.response(subject, int(status.split(" ", 1)[0])))
        except Exception:  # the answer is on its way; counting it is best effort
            _log.warning("abuse response observation failed", exc_info=True)

    @staticmethod
    def _answer(
        start_response: Callable[..., Any], answer: tuple[int, list[tuple[str, str]], bytes]
    ) -> Iterable[bytes]:
        status, headers, body = answer
        text = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests"}
        phrase = text.get(status, "Service Unavailable")
        start_response(f"{status} {phrase}", [*headers, ("content-length", str(len(body)))])
        return [body]


@final
class AbuseASGIMiddleware(_Common):
    """Wrap an ASGI application (Starlette, FastAPI): ``AbuseASGIMiddleware(app, ...)``.

    ``tenant`` is a tenant id, or ``tenant(scope)`` returning one. Only ``http`` requests are
    decided; lifespan and other scopes pass through.
    """

    __slots__ = ("app",)

    def __init__(
        self,
        app: ASGIApp,
        protection: AbuseProtection,
        *,
        tenant: TenantOf,
        extractor: SubjectExtractor | None = None,
        observe_responses: bool | None = None,
    ) -> None:
        super().__init__(protection, tenant, extractor, observe_responses)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Decide, then call the application or answer the denial."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers: Mapping[str, str] = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())
        }
        client = scope.get("client")
        try:
            tenant = _tenant(self.tenant, scope)
            subject = self.extractor.subject(client[0] if client else None, headers.get)
            signal = Signal.request(subject, str(scope.get("path") or "/"))
        except (InvalidSignal, ValueError):
            await self._answer(send, _BAD_REQUEST)
            return
        except Exception:  # a tenant resolver that failed: nobody is let through unknown
            _log.exception("abuse middleware could not read the request; answering 503")
            await self._answer(send, _denial(_UNAVAILABLE))
            return
        try:
            with tenant_scope(tenant):
                decision = await self.protection.adecide(signal)
        except Exception:  # whatever failed, the request is not let through
            _log.exception("abuse decision failed; answering 503")
            decision = _UNAVAILABLE
        if not decision.allowed:
            await self._answer(send, _denial(decision))
            return
        if not self.observe:
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def observed(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 500)))
            await send(message)

        await self.app(scope, receive, observed)
        if status:
            try:
                with tenant_scope(tenant):
                    await self.protection.adecide(Signal.response(subject, status[0]))
            except Exception:  # the answer is sent; counting it is best effort
                _log.warning("abuse response observation failed", exc_info=True)

    @staticmethod
    async def _answer(send: Send, answer: tuple[int, list[tuple[str, str]], bytes]) -> None:
        status, headers, body = answer
        raw = [(k.encode(), v.encode()) for k, v in headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
