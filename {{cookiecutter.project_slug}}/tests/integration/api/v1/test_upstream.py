"""`GET /api/v1/upstream/status`: the example outbound integration through the whole stack,
against a fake upstream on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import serving
from tests.factories import RecordingPublisher, auth_headers
from tests.fake_upstream import FakeUpstream, Reply, fake_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as upstream:
        yield upstream


@pytest.fixture
def upstream_app(
    settings: Settings,
    session_maker: SessionMaker,
    events: RecordingPublisher,
    upstream: FakeUpstream,
) -> FastAPI:
    configured = settings.model_copy(
        update={
            "upstream_url": upstream.url,
            "http_timeout_seconds": 0.5,
            "http_retries": 1,
            "circuit_failure_threshold": 2,
            "circuit_reset_seconds": 30.0,
        }
    )

    @asynccontextmanager
    async def test_container(settings: Settings) -> AsyncIterator[Container]:
        async with build_container(settings) as container:
            yield dataclasses.replace(container, session_maker=session_maker, events=events)

    return create_app(configured, container_factory=test_container)


async def test_passes_the_upstream_status_on(upstream_app: FastAPI, upstream: FakeUpstream) -> None:
    upstream.then(Reply(503, b"{}"))  # one transient failure, retried
    async with serving(upstream_app) as client:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/upstream/status", headers=headers)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert upstream.count == 2


async def test_an_open_circuit_is_a_503_problem_with_retry_after(
    upstream_app: FastAPI, upstream: FakeUpstream
) -> None:
    upstream.default = Reply(503, b"{}")
    async with serving(upstream_app) as client:
        headers = await auth_headers(client)

        failing = await client.get("/api/v1/upstream/status", headers=headers)
        refused = await client.get("/api/v1/upstream/status", headers=headers)

    assert failing.status_code == 503
    assert failing.json()["type"].endswith("/upstream-unavailable")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/circuit-open")
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    # Two attempts opened the circuit; the refused request never reached the upstream.
    assert upstream.count == 2


async def test_an_unexpected_answer_is_a_503(upstream_app: FastAPI, upstream: FakeUpstream) -> None:
    upstream.then(Reply(200, b'{"unexpected": true}'))
    async with serving(upstream_app) as client:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/upstream/status", headers=headers)

    assert response.status_code == 503
    assert "retry-after" in response.headers


async def test_unconfigured_says_so(client: AsyncClient) -> None:
    headers = await auth_headers(client)

    response = await client.get("/api/v1/upstream/status", headers=headers)

    assert response.status_code == 200
    assert response.json() == {"status": "unconfigured"}


async def test_anonymous_gets_401(client: AsyncClient) -> None:
    assert (await client.get("/api/v1/upstream/status")).status_code == 401
