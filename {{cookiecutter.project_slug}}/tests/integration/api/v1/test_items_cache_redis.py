"""`GET /items/{id}` with the cache's Redis unreachable: every request still succeeds."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.cache import Cache
from {{ cookiecutter.project_slug }}.core.cache_redis import RedisCacheStore, create_cache_redis
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import serving
from tests.factories import RecordingPublisher, auth_headers
from tests.integration.api.v1.test_items import create_item


@pytest.fixture
def dead_cache_app(
    settings: Settings, session_maker: SessionMaker, events: RecordingPublisher
) -> FastAPI:
    @asynccontextmanager
    async def container_with_a_dead_cache(settings: Settings) -> AsyncIterator[Container]:
        redis = create_cache_redis("redis://127.0.0.1:1")
        try:
            async with build_container(settings) as container:
                yield dataclasses.replace(
                    container,
                    session_maker=session_maker,
                    events=events,
                    cache=Cache(RedisCacheStore(redis), key_prefix=settings.redis_key_prefix),
                )
        finally:
            await redis.aclose()

    return create_app(settings, container_factory=container_with_a_dead_cache)


async def test_a_dead_cache_never_fails_a_request(dead_cache_app: FastAPI) -> None:
    async with serving(dead_cache_app) as client:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers, "first")

        read = await client.get(f"/api/v1/items/{item_id}", headers=headers)
        patched = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "second"}, headers=headers
        )
        reread = await client.get(f"/api/v1/items/{item_id}", headers=headers)
        deleted = await client.delete(f"/api/v1/items/{item_id}", headers=headers)

    assert (read.status_code, read.json()["title"]) == (200, "first")
    assert patched.status_code == 200
    assert (reread.status_code, reread.json()["title"]) == (200, "second")
    assert deleted.status_code == 204
