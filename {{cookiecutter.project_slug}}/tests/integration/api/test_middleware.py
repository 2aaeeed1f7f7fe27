"""The middleware stack as the app assembles it: order, timeout, and who the caller is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from {{ cookiecutter.project_slug }}.api.deps import UserServiceDep
from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.middleware.auth import AuthPrincipalMiddleware
from {{ cookiecutter.project_slug }}.middleware.body_limit import BodySizeLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.errors import ErrorHandlerMiddleware
from {{ cookiecutter.project_slug }}.middleware.rate_limit import RateLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware
from {{ cookiecutter.project_slug }}.middleware.security_headers import SecurityHeadersMiddleware
from {{ cookiecutter.project_slug }}.middleware.timeout import TimeoutMiddleware
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate
from tests.conftest import make_settings, serving
from tests.factories import PASSWORD, auth_headers, unique_email


def test_middleware_runs_in_the_documented_order(settings: Settings) -> None:
    app = create_app(make_settings(cors_origins="https://app.example.com"))

    outside_in = [entry.cls.__name__ for entry in app.user_middleware]  # type: ignore[attr-defined]

    assert outside_in == [
        RequestContextMiddleware.__name__,
        ErrorHandlerMiddleware.__name__,
        SecurityHeadersMiddleware.__name__,
        CORSMiddleware.__name__,
        BodySizeLimitMiddleware.__name__,
        AuthPrincipalMiddleware.__name__,
        RateLimitMiddleware.__name__,
        TimeoutMiddleware.__name__,
        GZipMiddleware.__name__,
    ]


@pytest.fixture
async def slow_app(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncClient]:
    """The test app with a 2 s budget and a route that writes, then outlives it.

    The budget leaves a busy machine time to finish the write (a password hash and a few
    statements), so it runs out while the route sleeps, after the write, as the test intends.
    """
    app.user_middleware = [
        entry
        if entry.cls is not TimeoutMiddleware  # type: ignore[comparison-overlap]
        else type(entry)(TimeoutMiddleware, seconds=2.0)
        for entry in app.user_middleware
    ]

    @app.post("/slow-write")
    async def slow_write(users: UserServiceDep, email: str) -> None:
        await users.register(UserCreate(email=email, password=PASSWORD))
        await asyncio.sleep(60)

    async with serving(app) as client:
        yield client


async def test_a_request_over_its_budget_is_a_503_and_saves_nothing(
    slow_app: AsyncClient, session_maker: SessionMaker
) -> None:
    email = unique_email()

    response = await slow_app.post("/slow-write", params={"email": email})

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    async with session_maker() as session:
        found = await session.scalar(select(User).where(User.email == email))
    assert found is None


async def test_the_token_is_decoded_once_per_request(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await auth_headers(client)
    decoded: list[str] = []
    decode = security.decode_token

    def counting_decode(token: str, **kwargs: Any) -> security.TokenClaims:
        decoded.append(token)
        return decode(token, **kwargs)

    monkeypatch.setattr(security, "decode_token", counting_decode)

    response = await client.get("/api/v1/users/me", headers=headers)

    assert response.status_code == 200
    assert len(decoded) == 1


async def test_a_bad_token_is_a_401_not_an_error(client: AsyncClient) -> None:
    for token in (b"not-a-jwt", "é".encode() * 10, b"x" * 10_000):
        response = await client.get(
            "/api/v1/users/me", headers={b"authorization": b"Bearer " + token}
        )
        assert response.status_code == 401, token
        assert response.json()["detail"] == "the token is invalid or has expired"


async def test_rate_limits_count_each_signed_in_user_apart(settings: Settings) -> None:
    limited = make_settings(
        database_url="sqlite+aiosqlite:///:memory:",
        rate_limit_default="2/minute",
        secret_key="a-signing-key-for-this-test-only-0123456789abcdef",
    )
    app = create_app(limited)
    tokens = [
        security.create_token(
            unique_email(), kind="access", ttl_seconds=60, secret_key=limited.signing_key
        )[0]
        for _ in range(2)
    ]
    async with serving(app) as client:
        statuses = {
            token: [
                (
                    await client.get(
                        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
                    )
                ).status_code
                for _ in range(3)
            ]
            for token in tokens
        }

    # Each user has a bucket of two; the third request of each is refused, whoever came first.
    assert [codes[2] for codes in statuses.values()] == [429, 429]
    assert all(429 not in codes[:2] for codes in statuses.values())
