from __future__ import annotations

import uuid

from httpx import AsyncClient, Response

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import create_database, drop_database, make_settings, serving
from tests.services import ServiceUrls


async def probe(settings: Settings, path: str) -> Response:
    """One request to an app built from `settings`, lifespan included."""
    app = create_app(settings)
    async with serving(app) as client:
        return await client.get(path)


class TestLive:
    async def test_answers_without_touching_dependencies(self, client: AsyncClient) -> None:
        response = await client.get("/health/live")

        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    async def test_answers_while_the_database_is_down(self) -> None:
        broken = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")

        response = await probe(broken, "/health/live")

        assert response.status_code == 200


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

    async def test_503_while_the_database_is_behind_the_code(
        self, service_urls: ServiceUrls
    ) -> None:
        name = f"{{ cookiecutter.project_slug }}_behind_{uuid.uuid4().hex[:8]}"
        url = await create_database(service_urls.database, name)
        try:
            settings = make_settings(database_url=url, redis_url=service_urls.redis)
            unmigrated = await probe(settings, "/health/ready")
            await migrate.upgrade(settings, "0001_users")
            behind = await probe(settings, "/health/ready")
            await migrate.upgrade(settings)
            at_head = await probe(settings, "/health/ready")
        finally:
            await drop_database(service_urls.database, name)

        assert unmigrated.status_code == 503
        assert "no revision" in unmigrated.json()["checks"]["migrations"]["error"]
        assert behind.status_code == 503
        assert behind.json()["checks"]["migrations"]["error"].startswith("database at 0001_users")
        assert at_head.status_code == 200

    async def test_503_names_the_database_when_it_is_unreachable(self) -> None:
        broken = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")

        response = await probe(broken, "/health/ready")

        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"]
        assert "database" in response.json()["detail"]
        assert response.json()["checks"]["database"]["status"] == "failed"
{%- if cookiecutter.use_redis == 'y' %}

    async def test_503_names_redis_when_it_is_unreachable(self, settings: Settings) -> None:
        broken = make_settings(database_url=settings.database_url, redis_url="redis://127.0.0.1:1")

        response = await probe(broken, "/health/ready")

        assert response.status_code == 503
        body = response.json()
        assert "redis" in body["detail"]
        assert body["checks"]["redis"]["status"] == "failed"
        assert body["checks"]["database"]["status"] == "ok"
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}

    async def test_503_names_the_broker_when_it_is_unreachable(self, settings: Settings) -> None:
        broken = make_settings(
            database_url=settings.database_url,
            redis_url=settings.redis_url,
            celery_broker_url="{% if cookiecutter.use_redis == 'y' %}redis{% else %}amqp{% endif %}://127.0.0.1:1//",
        )

        response = await probe(broken, "/health/ready")

        assert response.status_code == 503
        assert response.json()["checks"]["broker"]["status"] == "failed"
{%- endif %}
