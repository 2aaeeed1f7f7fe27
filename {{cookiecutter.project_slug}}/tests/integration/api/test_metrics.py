"""/metrics: readable from the allowed networks only, and bounded in its series."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app

ClientFactory = Callable[..., AbstractAsyncContextManager[AsyncClient]]


def client_from(settings: Settings) -> ClientFactory:
    @asynccontextmanager
    async def open_client(peer: str, **overrides: Any) -> AsyncIterator[AsyncClient]:
        app = create_app(settings.model_copy(update=overrides))
        async with (
            LifespanManager(app) as manager,
            AsyncClient(
                transport=ASGITransport(app=manager.app, client=(peer, 40000)),
                base_url="http://test",
            ) as client,
        ):
            yield client

    return open_client


class TestMetricsAccess:
    async def test_loopback_may_read_them(self, settings: Settings) -> None:
        async with client_from(settings)("127.0.0.1") as client:
            response = await client.get("/metrics")

        assert response.status_code == 200
        assert "http_requests_total" in response.text

    async def test_a_private_network_may_read_them(self, settings: Settings) -> None:
        async with client_from(settings)("10.20.30.40") as client:
            response = await client.get("/metrics")

        assert response.status_code == 200

    async def test_a_public_address_gets_a_403_problem(self, settings: Settings) -> None:
        async with client_from(settings)("203.0.113.9") as client:
            response = await client.get("/metrics")

        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert "METRICS_ALLOWED_NETWORKS" in response.json()["detail"]

    async def test_a_forged_forwarded_for_does_not_open_them(self, settings: Settings) -> None:
        async with client_from(settings)("203.0.113.9") as client:
            response = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})

        assert response.status_code == 403

    async def test_the_allow_list_is_configurable(self, settings: Settings) -> None:
        open_client = client_from(settings)
        async with open_client("203.0.113.9", metrics_allowed_networks=["203.0.113.0/24"]) as c:
            allowed = await c.get("/metrics")
        async with open_client("127.0.0.1", metrics_allowed_networks=["203.0.113.0/24"]) as c:
            refused = await c.get("/metrics")

        assert (allowed.status_code, refused.status_code) == (200, 403)


async def request_series(client: AsyncClient) -> set[str]:
    """The label sets of the HTTP request counter, as /metrics shows them."""
    text = (await client.get("/metrics")).text
    return {
        line.rpartition(" ")[0]
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
    }


async def test_a_thousand_ids_add_no_series(client: AsyncClient) -> None:
    await client.get(f"/api/v1/users/{uuid.uuid4()}")
    await client.get(f"/no/such/{uuid.uuid4()}")
    before = await request_series(client)

    for index in range(1_000):
        await client.get(f"/api/v1/users/{uuid.uuid4()}")
        if index % 10 == 0:
            await client.get(f"/no/such/{uuid.uuid4()}")

    assert await request_series(client) == before
    assert any('handler="/api/v1/users/{user_id}"' in series for series in before)
    assert not any("/no/such" in series for series in before)
