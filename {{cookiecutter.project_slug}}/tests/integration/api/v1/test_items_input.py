"""Bad input to the items API is a 422 naming what is wrong, never a 500."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from {{ cookiecutter.project_slug }}.api.deps import UnitOfWorkDep
from {{ cookiecutter.project_slug }}.schemas.pagination import MAX_PAGE
from tests.factories import auth_headers


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


async def test_a_missing_owner_is_a_422_naming_the_field(app: FastAPI) -> None:
    async def violate(uow: UnitOfWorkDep) -> None:
        await uow.session.execute(
            text(
                "INSERT INTO items (id, owner_id, title) "
                "VALUES (gen_random_uuid(), gen_random_uuid(), 't')"
            )
        )

    app.add_api_route("/test-only/violate", violate, methods=["POST"])
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        response = await client.post("/test-only/violate")

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {
            "field": "owner_id_users",
            "message": "refers to a record that does not exist",
            "type": "foreign_key",
        }
    ]
