"""Request ids: a sane incoming id follows the request, anything else is replaced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware

GENERATED = re.compile(r"^[0-9a-f]{32}$")


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"request_id": request.state.request_id})


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    app = RequestContextMiddleware(Starlette(routes=[Route("/", whoami)]))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_sane_incoming_id_is_echoed_and_used(client: AsyncClient) -> None:
    response = await client.get("/", headers={"X-Request-ID": "req-2026.11:abc_DEF"})
    assert response.headers["x-request-id"] == "req-2026.11:abc_DEF"
    assert response.json()["request_id"] == "req-2026.11:abc_DEF"


async def test_missing_id_is_generated(client: AsyncClient) -> None:
    first = await client.get("/")
    second = await client.get("/")
    assert GENERATED.fullmatch(first.headers["x-request-id"])
    assert first.json()["request_id"] == first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "x" * 129,
        "id with spaces inside",
        "id\u00e9-latin1-accent",
        'evil"quote-and;semicolon',
        "{jndi:ldap://evil.example/a}",
    ],
    ids=["too-short", "too-long", "spaces", "non-ascii", "quotes", "template-injection"],
)
async def test_insane_id_is_replaced(client: AsyncClient, incoming: str) -> None:
    response = await client.get("/", headers=[(b"x-request-id", incoming.encode("latin-1"))])
    assert response.headers["x-request-id"] != incoming
    assert GENERATED.fullmatch(response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_error_responses_carry_the_id_too(client: AsyncClient) -> None:
    response = await client.get("/missing", headers={"X-Request-ID": "trace-0123456789"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-0123456789"
