"""Bodies over the limit get 413 problem+json, whether their length is declared or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.middleware.body_limit import BodySizeLimitMiddleware
from tests.conftest import make_settings, serving

LIMIT = 64


@dataclass
class Echo:
    """Counts the requests that reached the application."""

    calls: int = 0

    async def endpoint(self, request: Request) -> JSONResponse:
        self.calls += 1
        return JSONResponse({"received": len(await request.body())})


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
async def client(echo: Echo) -> AsyncIterator[AsyncClient]:
    # A bare router, as in the service: the middleware sits inside Starlette's error middleware.
    app = BodySizeLimitMiddleware(
        Router(routes=[Route("/echo", echo.endpoint, methods=["POST"])]), max_bytes=LIMIT
    )
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_body_within_the_limit_reaches_the_app(client: AsyncClient, echo: Echo) -> None:
    response = await client.post("/echo", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}
    assert echo.calls == 1


async def test_declared_length_over_the_limit_is_refused_before_the_app_runs(
    client: AsyncClient, echo: Echo
) -> None:
    response = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == 413
    assert problem["instance"] == "/echo"
    assert str(LIMIT) in problem["detail"]
    assert echo.calls == 0


async def test_chunked_body_over_the_limit_is_refused(client: AsyncClient) -> None:
    # No Content-Length: the middleware has to count what arrives.
    response = await client.post("/echo", content=chunks(b"x" * 40, b"x" * 40, b"x" * 40))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["status"] == 413


async def test_chunked_body_within_the_limit_is_accepted(client: AsyncClient) -> None:
    response = await client.post("/echo", content=chunks(b"x" * 30, b"x" * 30))
    assert response.status_code == 200
    assert response.json() == {"received": 60}


class TestInTheService:
    """The same limits through the real application, where FastAPI reads and parses the body."""

    @pytest.fixture
    async def service(self) -> AsyncIterator[AsyncClient]:
        # The lifespan builds the container; nothing connects until a request needs the database.
        settings = make_settings(max_body_bytes=LIMIT, database_url="sqlite+aiosqlite:///:memory:")
        async with serving(create_app(settings)) as client:
            yield client

    async def test_declared_length_over_the_limit_is_413(self, service: AsyncClient) -> None:
        response = await service.post(
            "/api/v1/auth/register",
            content=b'{"email": "' + b"x" * LIMIT + b'"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE

    async def test_chunked_body_over_the_limit_is_413(self, service: AsyncClient) -> None:
        response = await service.post(
            "/api/v1/auth/register",
            content=chunks(b'{"email": "', b"x" * LIMIT, b'"}'),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
