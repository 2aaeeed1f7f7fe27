"""Failed logins are throttled per account and per client address, before the password is
checked; a success clears the account's count."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, register, unique_email

WRONG = "not-the-password-at-all"

ClientFactory = Callable[..., AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def throttled_client(settings: Settings, session_maker: SessionMaker) -> ClientFactory:
    """A client of an app with the given settings, calling from an address of its own (the
    per-client counters of Redis outlive the test)."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[AsyncClient]:
        app_settings = make_settings(
            **{
                "database_url": settings.database_url,
                "redis_url": settings.redis_url,
                **overrides,
            }
        )

        @asynccontextmanager
        async def container(app_settings: Settings) -> AsyncIterator[Container]:
            async with build_container(app_settings) as built:
                yield dataclasses.replace(built, session_maker=session_maker)

        app = create_app(app_settings, container_factory=container)
        address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        async with (
            LifespanManager(app) as manager,
            AsyncClient(
                transport=ASGITransport(app=manager.app, client=(address, 40000)),
                base_url="http://test",
            ) as client,
        ):
            yield client

    return open_client


async def attempt(client: AsyncClient, email: str, password: str) -> int:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


async def test_the_sixth_attempt_is_refused_without_checking_the_password(
    throttled_client: ClientFactory,
) -> None:
    async with throttled_client() as client:
        email = unique_email()
        await register(client, email)
        failures = [await attempt(client, email, WRONG) for _ in range(5)]

        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )

    assert failures == [401] * 5
    # The right password is refused too: the throttle answers before it is checked.
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 900
    assert response.json()["status"] == 429


async def test_a_success_clears_the_account_count(throttled_client: ClientFactory) -> None:
    async with throttled_client() as client:
        email = unique_email()
        await register(client, email)
        before = [await attempt(client, email, WRONG) for _ in range(4)]
        success = await attempt(client, email, PASSWORD)
        after = [await attempt(client, email, WRONG) for _ in range(4)]

        assert before == after == [401] * 4
        assert success == 200
        assert await attempt(client, email, PASSWORD) == 200


async def test_other_accounts_are_not_throttled(throttled_client: ClientFactory) -> None:
    async with throttled_client(login_max_failures_per_client=1_000) as client:
        victim, other = unique_email(), unique_email()
        await register(client, victim)
        await register(client, other)
        for _ in range(5):
            await attempt(client, victim, WRONG)

        assert await attempt(client, victim, PASSWORD) == 429
        assert await attempt(client, other, PASSWORD) == 200


async def test_one_client_guessing_across_accounts_is_throttled(
    throttled_client: ClientFactory,
) -> None:
    async with throttled_client(login_max_failures_per_client=5) as client:
        email = unique_email()
        await register(client, email)
        failures = [await attempt(client, unique_email(), WRONG) for _ in range(5)]

        assert failures == [401] * 5
        assert await attempt(client, email, PASSWORD) == 429


async def test_unknown_accounts_count_like_known_ones(throttled_client: ClientFactory) -> None:
    # Otherwise the 429 would reveal which e-mail addresses have accounts.
    async with throttled_client(login_max_failures_per_client=1_000) as client:
        unknown = unique_email()
        failures = [await attempt(client, unknown, WRONG) for _ in range(6)]

    assert failures == [401] * 5 + [429]
