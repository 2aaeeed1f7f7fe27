"""The app applies its rate limits: stricter on auth routes, none on probes, headers on each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings, serving
from tests.factories import auth_headers


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[AsyncClient]:
    # No Redis: a store of this app's own, so no other test shares its buckets.
    limited_settings = make_settings(
        database_url=settings.database_url,
        rate_limit_default="5/minute",
        rate_limit_auth="2/minute",
    )
    app = create_app(limited_settings)
    async with serving(app) as client:
        yield client


async def test_auth_routes_get_the_stricter_limit(limited: AsyncClient) -> None:
    statuses = [
        (await limited.post("/api/v1/auth/login", json={"email": "a@example.com"})).status_code
        for _ in range(3)
    ]

    assert statuses == [422, 422, 429]


async def test_a_refusal_is_a_problem_with_retry_after(limited: AsyncClient) -> None:
    for _ in range(2):
        await limited.post("/api/v1/auth/login", json={})

    response = await limited.post("/api/v1/auth/login", json={})

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 429


async def test_limited_routes_carry_rate_limit_headers(limited: AsyncClient) -> None:
    first = await limited.get("/api/v1/users/me")
    second = await limited.get("/api/v1/users/me")

    assert first.status_code == 401
    assert first.headers["x-ratelimit-limit"] == "5"
    assert first.headers["x-ratelimit-remaining"] == "4"
    assert second.headers["x-ratelimit-remaining"] == "3"
    assert first.headers["ratelimit-policy"] == '"default";q=5;w=60'


async def test_probes_are_exempt(limited: AsyncClient) -> None:
    statuses = {(await limited.get("/health/live")).status_code for _ in range(10)}

    assert statuses == {200}


async def test_routes_are_bucketed_by_their_template(limited: AsyncClient) -> None:
    # Five per route template: the item ids share one bucket, another route has its own.
    for number in range(5):
        await limited.get(f"/api/v1/users/{number}")

    assert (await limited.get("/api/v1/users/5")).status_code == 429
    assert (await limited.get("/api/v1/users/me")).status_code == 401


async def test_a_route_with_its_own_limit_uses_it(limited: AsyncClient) -> None:
    headers = await auth_headers(limited)

    response = await limited.post("/api/v1/users/me/password", json={}, headers=headers)

    assert response.status_code == 422
    assert response.headers["ratelimit-policy"] == '"route";q=10;w=3600'
