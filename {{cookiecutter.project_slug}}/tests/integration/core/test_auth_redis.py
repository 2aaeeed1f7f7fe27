"""The Redis token store and login-attempt store against a real Redis: rotation, reuse,
revocation, TTLs no longer than the tokens', and a dead Redis answered without a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.core.auth_redis import RedisAttemptStore, RedisTokenStore
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.core.login_throttle import AttemptStoreError
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, unique_email
from tests.services import ServiceUrls, namespace

# Nothing listens there: a Redis that is down.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
async def redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    redis = Redis.from_url(service_urls.redis)
    yield redis
    await redis.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = f"test:{namespace()}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def store(redis: Redis, prefix: str) -> RedisTokenStore:
    return RedisTokenStore(redis, key_prefix=prefix)


class TestTokenStore:
    async def test_rotation_swaps_the_current_token(self, store: RedisTokenStore) -> None:
        await store.start_family("user-1", "fam-1", "jti-1", 60)

        assert await store.rotate("fam-1", "jti-1", "jti-2", 60) is True
        assert await store.rotate("fam-1", "jti-2", "jti-3", 60) is True

    async def test_a_retired_token_ends_the_family(self, store: RedisTokenStore) -> None:
        await store.start_family("user-1", "fam-1", "jti-1", 60)
        await store.rotate("fam-1", "jti-1", "jti-2", 60)

        assert await store.rotate("fam-1", "jti-1", "jti-x", 60) is False
        assert await store.rotate("fam-1", "jti-2", "jti-3", 60) is False

    async def test_ending_a_users_families_leaves_others(self, store: RedisTokenStore) -> None:
        await store.start_family("user-1", "fam-1", "jti-1", 60)
        await store.start_family("user-1", "fam-2", "jti-2", 60)
        await store.start_family("user-2", "fam-3", "jti-3", 60)

        await store.end_user_families("user-1")

        assert await store.rotate("fam-1", "jti-1", "n1", 60) is False
        assert await store.rotate("fam-2", "jti-2", "n2", 60) is False
        assert await store.rotate("fam-3", "jti-3", "n3", 60) is True

    async def test_entries_expire_with_their_tokens(
        self, store: RedisTokenStore, redis: Redis, prefix: str
    ) -> None:
        await store.start_family("user-1", "fam-1", "jti-1", 60)
        await store.revoke("jti-9", 30)

        assert 0 < await redis.ttl(f"{prefix}tok:fam:fam-1") <= 60
        assert 0 < await redis.ttl(f"{prefix}tok:user:user-1") <= 60
        assert 0 < await redis.ttl(f"{prefix}tok:revoked:jti-9") <= 30
        assert await store.is_revoked("jti-9") is True
        assert await store.is_revoked("jti-8") is False

    async def test_a_dead_redis_is_unavailable_not_an_error(self) -> None:
        dead = Redis.from_url(DEAD_REDIS, socket_connect_timeout=1.0)
        try:
            with pytest.raises(ServiceUnavailableError):
                await RedisTokenStore(dead).is_revoked("jti-1")
            with pytest.raises(AttemptStoreError):
                await RedisAttemptStore(dead).counts(["a"])
        finally:
            await dead.aclose()


class TestAttemptStore:
    async def test_counts_failures_within_one_window(self, redis: Redis, prefix: str) -> None:
        store = RedisAttemptStore(redis)
        keys = [f"{prefix}a", f"{prefix}b"]

        await store.add_failure(keys, 60)
        await store.add_failure(keys[:1], 60)
        counts = await store.counts([*keys, f"{prefix}c"])

        assert [count for count, _ in counts] == [2, 1, 0]
        assert all(0 < ttl <= 60 for _, ttl in counts[:2])
        await store.clear(keys[0])
        assert (await store.counts(keys[:1]))[0][0] == 0


async def login_statuses(settings: Settings, **overrides: object) -> tuple[int, int, int]:
    """Wrong, then right password, against an app whose Redis is down."""
    app = create_app(
        make_settings(database_url=settings.database_url, redis_url=DEAD_REDIS, **overrides)
    )
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        email = unique_email()
        registered = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "not-the-password"}
        )
        right = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert right.headers["content-type"] == "application/problem+json"
        assert int(right.headers["retry-after"]) >= 1
    return (registered.status_code, wrong.status_code, right.status_code)


async def test_with_redis_down_fail_open_logins_are_checked_but_no_session_starts(
    settings: Settings,
) -> None:
    # The throttle admits (fail open); the token store cannot record a session, so no tokens.
    assert await login_statuses(settings, rate_limit_fail_open=True) == (201, 401, 503)


async def test_with_redis_down_fail_closed_everything_is_503(settings: Settings) -> None:
    assert await login_statuses(settings, rate_limit_fail_open=False) == (503, 503, 503)
