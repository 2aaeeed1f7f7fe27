from __future__ import annotations

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings


class TestLive:
    async def test_answers_without_touching_dependencies(self, client: AsyncClient) -> None:
        response = await client.get("/health/live")

        assert response.status_code == 200
        assert response.json()["status"] == "ok"


class TestReady:
    async def test_reports_each_dependency_with_latency(self, client: AsyncClient) -> None:
        response = await client.get("/health/ready")

        assert response.status_code == 200
        checks = response.json()["checks"]
        assert checks["database"]["status"] == "ok"
{%- if cookiecutter.use_redis == 'y' %}
        assert checks["redis"]["status"] == "ok"
{%- endif %}
        assert all(check["latency_ms"] >= 0 for check in checks.values())
{%- if cookiecutter.use_redis == 'y' %}

    async def test_503_names_redis_when_it_is_unreachable(self, settings: Settings) -> None:
        from asgi_lifespan import LifespanManager
        from httpx import ASGITransport

        broken = make_settings(database_url=settings.database_url, redis_url="redis://127.0.0.1:1")
        app = create_app(broken)
        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://t") as client,
        ):
            response = await client.get("/health/ready")

        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"]
        body = response.json()
        assert "redis" in body["detail"]
        assert body["checks"]["redis"]["status"] == "failed"
        assert body["checks"]["database"]["status"] == "ok"
{%- endif %}

    async def test_503_names_the_database_when_it_is_unreachable(self) -> None:
        from asgi_lifespan import LifespanManager
        from httpx import ASGITransport

        broken = make_settings(
            database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", redis_url=None
        )
        app = create_app(broken)
        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://t") as client,
        ):
            live = await client.get("/health/live")
            ready = await client.get("/health/ready")

        assert live.status_code == 200
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "failed"
