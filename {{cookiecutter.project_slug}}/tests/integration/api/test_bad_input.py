"""Bad input is a 4xx naming what is wrong, never a 500; an unreachable database is a 503."""

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
from {{ cookiecutter.project_slug }}.schemas.pagination import MAX_PAGE
from tests.conftest import SECRET_KEY, make_settings
from tests.factories import auth_headers
from tests.services import ServiceUrls


def fields(response_json: dict[str, object]) -> set[str]:
    errors = response_json["errors"]
    assert isinstance(errors, list)
    return {error["field"] for error in errors}


class TestQueryBounds:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"page": 0}, "page"),
            ({"page": MAX_PAGE + 1}, "page"),
            ({"page": 2**70}, "page"),
            ({"page_size": 101}, "page_size"),
            ({"page_size": 0}, "page_size"),
        ],
    )
    async def test_out_of_range_is_a_422_naming_the_parameter(
        self, client: AsyncClient, query: dict[str, int], field: str
    ) -> None:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/items", params=query, headers=headers)

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert fields(response.json()) == {field}

    async def test_the_last_page_is_answered(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(
            "/api/v1/items", params={"page": MAX_PAGE, "page_size": 100}, headers=headers
        )

        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


class TestTextFields:
    @pytest.mark.parametrize(
        "body",
        [
            {"title": "nul\x00inside"},
            {"title": "x" * 201},
            {"title": "ok", "description": "nul\x00inside"},
        ],
    )
    async def test_unstorable_text_is_a_422(
        self, client: AsyncClient, body: dict[str, str]
    ) -> None:
        headers = await auth_headers(client)

        response = await client.post("/api/v1/items", json=body, headers=headers)

        assert response.status_code == 422, response.text
        assert fields(response.json()) == {next(key for key in body if body[key] != "ok")}

    async def test_a_lone_surrogate_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post(
            "/api/v1/items",
            content=b'{"title": "\\ud800"}',
            headers={**headers, "content-type": "application/json"},
        )

        assert response.status_code == 422, response.text
        assert fields(response.json()) == {"title"}

    async def test_nul_in_a_registration_name_is_a_422(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "nul@example.com", "password": "x\x00" * 8, "full_name": "a\x00"},
        )

        assert response.status_code == 422, response.text
        assert fields(response.json()) == {"password", "full_name"}


class TestExplicitNull:
    async def test_null_title_on_create_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post("/api/v1/items", json={"title": None}, headers=headers)

        assert response.status_code == 422
        assert fields(response.json()) == {"title"}

    async def test_null_title_on_patch_is_a_422_and_changes_nothing(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        created = await client.post("/api/v1/items", json={"title": "kept"}, headers=headers)
        item_url = f"/api/v1/items/{created.json()['id']}"

        response = await client.patch(item_url, json={"title": None}, headers=headers)

        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["message"].endswith("not set to null")
        assert (await client.get(item_url, headers=headers)).json()["title"] == "kept"

    async def test_null_description_on_patch_clears_it(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        created = await client.post(
            "/api/v1/items", json={"title": "t", "description": "d"}, headers=headers
        )

        response = await client.patch(
            f"/api/v1/items/{created.json()['id']}", json={"description": None}, headers=headers
        )

        assert response.status_code == 200, response.text
        assert response.json()["description"] is None

    async def test_the_schema_does_not_offer_null_for_title(self, client: AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()["components"]["schemas"]

        assert schema["ItemUpdate"]["properties"]["title"]["type"] == "string"


@pytest.fixture
def integrity_app(app: FastAPI) -> FastAPI:
    """The real app plus routes that break each kind of constraint in the real database."""
    statements = {
        "unique": "INSERT INTO users (id, email, password_hash) VALUES "
        "(gen_random_uuid(), 'dup@example.com', 'x'), (gen_random_uuid(), 'dup@example.com', 'x')",
        "not-null": "INSERT INTO users (id, email) VALUES (gen_random_uuid(), 'n@example.com')",
        "foreign-key": "INSERT INTO items (id, owner_id, title) VALUES "
        "(gen_random_uuid(), gen_random_uuid(), 't')",
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

    @pytest.mark.parametrize(
        ("kind", "field", "type_"),
        [
            ("not-null", "password_hash", "not_null"),
            ("foreign-key", "owner_id_users", "foreign_key"),
        ],
    )
    async def test_other_violations_are_a_422(
        self, integrity_client: AsyncClient, kind: str, field: str, type_: str
    ) -> None:
        response = await integrity_client.post(f"/test-only/violate/{kind}")

        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["type"] == type_
        assert response.json()["errors"][0]["field"] == field

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
    async def test_an_item_read_is_a_503_with_retry_after(self, service_urls: ServiceUrls) -> None:
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
                f"/api/v1/items/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}
            )

        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["status"] == 503
