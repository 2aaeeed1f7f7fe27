"""Anything unhandled becomes a 500 problem: no stack trace, no exception text."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE
from {{ cookiecutter.project_slug }}.middleware.errors import ErrorHandlerMiddleware
from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware


async def broken(_: Request) -> Response:
    raise RuntimeError("password=hunter2 in SELECT * FROM users")


async def test_unhandled_error_is_a_problem_without_internals() -> None:
    # A bare router: Starlette's own ServerErrorMiddleware would answer first otherwise.
    inner = Router(routes=[Route("/broken", broken)])
    app = RequestContextMiddleware(ErrorHandlerMiddleware(inner))
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/broken", headers={"X-Request-ID": "trace-0123456789"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == 500
    assert problem["instance"] == "/broken"
    assert problem["request_id"] == "trace-0123456789"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
