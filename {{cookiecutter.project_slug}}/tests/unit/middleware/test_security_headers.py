"""Security headers on every response; HSTS only when asked (production)."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from {{ cookiecutter.project_slug }}.middleware.security_headers import (
    API_CSP,
    DOCS_CSP,
    SecurityHeadersMiddleware,
)


async def plain(_: Request) -> Response:
    return PlainTextResponse("ok")


async def framable(_: Request) -> Response:
    return PlainTextResponse("embed me", headers={"X-Frame-Options": "SAMEORIGIN"})


def client(*, hsts: bool) -> AsyncClient:
    inner = Starlette(
        routes=[Route("/", plain), Route("/docs", plain), Route("/framable", framable)]
    )
    app = SecurityHeadersMiddleware(inner, hsts=hsts)
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test")


async def test_api_responses_carry_the_headers() -> None:
    async with client(hsts=False) as http:
        response = await http.get("/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in response.headers["permissions-policy"]
    assert response.headers["content-security-policy"] == API_CSP
    assert "strict-transport-security" not in response.headers


async def test_not_found_responses_carry_them_too() -> None:
    async with client(hsts=False) as http:
        response = await http.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hsts_is_sent_when_enabled() -> None:
    async with client(hsts=True) as http:
        response = await http.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_docs_page_gets_a_policy_that_lets_swagger_load() -> None:
    async with client(hsts=False) as http:
        response = await http.get("/docs")
    assert response.headers["content-security-policy"] == DOCS_CSP


async def test_a_route_can_choose_its_own_value() -> None:
    async with client(hsts=False) as http:
        response = await http.get("/framable")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
