"""Database failures: constraint violations are the client's (409, 422), an unreachable
database is a 503 with Retry-After, anything else a 500 that shows no SQL."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from {{ cookiecutter.project_slug }}.api.deps import UnitOfWorkDep
from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import SECRET_KEY, make_settings
from tests.services import ServiceUrls


@pytest.fixture
def integrity_app(app: FastAPI) -> FastAPI:
    """The real app plus routes that break each kind of constraint in the real database."""
    statements = {
        "unique": "INSERT INTO users (id, email, password_hash) VALUES "
        "(gen_random_uuid(), 'dup@example.com', 'x'), (gen_random_uuid(), 'dup@example.com', 'x')",
        "not-null": "INSERT INTO users (id, email) VALUES (gen_random_uuid(), 'n@example.com')",
        "syntax": "SELEC 1",
    }

    async def violate(kind: str, uow: UnitOfWorkDep) -> None:
        await uow.session.execute(text(statements[kind]))

    app.add_api_route("/test-only/violate/{kind}", violate, methods=["POST"])
    return app


@pytest.fixture
async def integrity_client(integrity_app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with (
        LifespanManager(integrity_app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


class TestDatabaseErrors:
    async def test_a_unique_violation_is_a_409_naming_the_field(
        self, integrity_client: AsyncClient
    ) -> None:
        response = await integrity_client.post("/test-only/violate/unique")

        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"field": "email", "message": "is already taken", "type": "unique"}
        ]

    async def test_a_not_null_violation_is_a_422_naming_the_field(
        self, integrity_client: AsyncClient
    ) -> None:
        response = await integrity_client.post("/test-only/violate/not-null")

        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {"field": "password_hash", "message": "is required", "type": "not_null"}
        ]

    async def test_any_other_driver_error_is_a_500_without_sql(
        self, integrity_client: AsyncClient
    ) -> None:
        response = await integrity_client.post("/test-only/violate/syntax")

        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "SELEC" not in response.text
        assert response.json()["request_id"] == response.headers["x-request-id"]


def dead_port() -> int:
    """A local port nothing listens on: bound, then released, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestDatabaseDown:
    async def test_a_read_is_a_503_with_retry_after(self, service_urls: ServiceUrls) -> None:
        settings = make_settings(
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{dead_port()}/test",
            redis_url=service_urls.redis,
        )
        token, _ = security.create_token(
            str(uuid.uuid4()), kind="access", ttl_seconds=60, secret_key=SECRET_KEY
        )
        app = create_app(settings)

        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://t") as client,
        ):
            response = await client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
            )

        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["status"] == 503
