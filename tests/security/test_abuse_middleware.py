"""The middleware in front of real applications: Flask through its test client, Starlette
through httpx's ASGI transport. Denied requests never reach the application."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from pytest_reliability.clock import ManualClock
from pytest_reliability.errors import ConfigurationError
from pytest_reliability.security.abuse_protection import (
    AbuseASGIMiddleware,
    AbusePolicy,
    AbuseProtection,
    AbuseWSGIMiddleware,
    ErrorShare,
    RequestBurst,
    Scraping,
    SubjectExtractor,
    Threshold,
    Tier,
)
from pytest_reliability.tenancy import tenant_scope

pytestmark = pytest.mark.abuse

POLICY = AbusePolicy(
    detectors=(
        RequestBurst((Threshold(60.0, 3, Tier.THROTTLE),)),
        Scraping(distinct_paths=None, error_share=ErrorShare(60.0, 0.5, 3, Tier.WARN)),
    ),
    block_ladder=(120.0,),
)
PROXIES = SubjectExtractor(trusted_proxies=["10.0.0.0/8"], api_key_header="x-api-key")


@pytest.fixture
def protection(clock: ManualClock) -> Iterator[AbuseProtection]:
    p = AbuseProtection.from_url("memory://", POLICY, clock=clock)
    yield p
    p.close()


# -- Flask (WSGI) -------------------------------------------------------------------------


@pytest.fixture
def flask_app(protection: AbuseProtection) -> tuple[flask.Flask, list[str]]:
    app = flask.Flask("abuse-test")
    reached: list[str] = []

    @app.route("/<path:path>")
    def anything(path: str) -> Any:
        reached.append(path)
        return ("missing", 404) if path.startswith("missing") else "ok"

    app.wsgi_app = AbuseWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, protection, tenant="acme", extractor=PROXIES
    )
    return app, reached


def test_flask_throttles_with_429_and_retry_after(flask_app: tuple[flask.Flask, list[str]]) -> None:
    app, reached = flask_app
    client = app.test_client()
    codes = [client.get("/items").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    denied = client.get("/items")
    assert denied.status_code == 429
    assert int(denied.headers["Retry-After"]) >= 1
    assert denied.get_json()["error"] == "too many requests"
    assert reached == ["items"] * 3  # the application never saw a denied request


def test_flask_blocks_a_prober_with_403_and_retry_after(
    flask_app: tuple[flask.Flask, list[str]],
) -> None:
    app, reached = flask_app
    client = app.test_client()
    blocked = client.get("/.env")
    assert blocked.status_code == 403
    assert blocked.headers["Retry-After"] == "120"
    assert client.get("/items").status_code == 403
    assert reached == []


def test_flask_counts_responses_for_the_error_share(
    flask_app: tuple[flask.Flask, list[str]], protection: AbuseProtection, clock: ManualClock
) -> None:
    app, _ = flask_app
    client = app.test_client()
    for i in range(3):
        assert client.get(f"/missing{i}").status_code == 404
        clock.advance(30)  # stay under the burst limit
    client.get("/missing-again")
    with tenant_scope("acme"):
        assert protection.status("127.0.0.1").tier is Tier.WARN


def test_flask_trusts_forwarded_for_only_from_a_trusted_proxy(
    flask_app: tuple[flask.Flask, list[str]], protection: AbuseProtection
) -> None:
    app, _ = flask_app
    client = app.test_client()
    spoof = {"X-Forwarded-For": "198.51.100.1"}
    client.get("/.env", headers=spoof, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    via_proxy = {"REMOTE_ADDR": "10.1.1.1"}
    client.get("/.env", headers={"X-Forwarded-For": "192.0.2.44, 10.2.2.2"},
               environ_base=via_proxy)  # fmt: skip
    client.get("/items", headers={"X-API-Key": "sk_test_secret"}, environ_base=via_proxy)
    with tenant_scope("acme"):
        assert protection.status("203.0.113.7").tier is Tier.BLOCK  # the real peer
        assert protection.status("198.51.100.1").tier is Tier.NORMAL  # spoof ignored
        assert protection.status("192.0.2.44").tier is Tier.BLOCK  # the proxy's client
        assert protection.status("10.2.2.2").tier is Tier.NORMAL


def test_flask_answers_503_when_the_store_is_down(clock: ManualClock) -> None:
    p = AbuseProtection.from_url(
        "redis://127.0.0.1:1/0", POLICY, clock=clock, durability="warn", socket_timeout=0.3
    )
    app = flask.Flask("down")
    app.add_url_rule("/", "root", lambda: "ok")
    app.wsgi_app = AbuseWSGIMiddleware(app.wsgi_app, p, tenant="acme")  # type: ignore[method-assign]
    response = app.test_client().get("/")
    p.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


# -- Starlette (ASGI) ---------------------------------------------------------------------


def starlette_app(protection: AbuseProtection, reached: list[str]) -> AbuseASGIMiddleware:
    async def anything(request: Request) -> Any:
        reached.append(request.url.path)
        if request.url.path.startswith("/missing"):
            return PlainTextResponse("missing", status_code=404)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/{path:path}", anything)])
    return AbuseASGIMiddleware(app, protection, tenant=lambda scope: "acme", extractor=PROXIES)


def _get(app: Any, path: str, *, client: tuple[str, int] = ("127.0.0.1", 5000),
         headers: dict[str, str] | None = None) -> httpx.Response:  # fmt: skip
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_starlette_throttles_blocks_and_keeps_denied_requests_from_the_app(
    protection: AbuseProtection,
) -> None:
    reached: list[str] = []
    app = starlette_app(protection, reached)
    codes = [_get(app, "/items").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert int(_get(app, "/items").headers["retry-after"]) >= 1
    probe = _get(app, "/wp-login.php", client=("203.0.113.8", 1))
    assert (probe.status_code, probe.headers["retry-after"]) == (403, "120")
    assert reached == ["/items"] * 3


def test_starlette_trusted_proxy_spoofing_and_response_counting(
    protection: AbuseProtection, clock: ManualClock
) -> None:
    app = starlette_app(protection, [])
    _get(app, "/.env", client=("203.0.113.9", 1), headers={"x-forwarded-for": "198.51.100.2"})
    _get(app, "/.env", client=("10.9.9.9", 1), headers={"x-forwarded-for": "garbage, 192.0.2.5"})
    with tenant_scope("acme"):
        assert protection.status("203.0.113.9").tier is Tier.BLOCK
        assert protection.status("198.51.100.2").tier is Tier.NORMAL
        assert protection.status("192.0.2.5").tier is Tier.BLOCK
    for i in range(3):
        _get(app, f"/missing/{i}", client=("192.0.2.99", 1))
        clock.advance(30)
    with tenant_scope("acme"):
        assert protection.status("192.0.2.99").tier is Tier.WARN


def test_starlette_answers_503_when_deciding_fails(clock: ManualClock) -> None:
    p = AbuseProtection.from_url(
        "redis://127.0.0.1:1/0", POLICY, clock=clock, durability="warn", socket_timeout=0.3
    )
    response = _get(starlette_app(p, []), "/")
    p.close()
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    bad_tenant = AbuseASGIMiddleware(Starlette(), p, tenant=lambda scope: "not a tenant!")
    assert _get(bad_tenant, "/").status_code == 400

    def broken(scope: object) -> str:
        raise LookupError("tenant directory down")

    assert _get(AbuseASGIMiddleware(Starlette(), p, tenant=broken), "/").status_code == 503


def test_a_bad_trusted_proxy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        SubjectExtractor(trusted_proxies=["not-a-network"])
