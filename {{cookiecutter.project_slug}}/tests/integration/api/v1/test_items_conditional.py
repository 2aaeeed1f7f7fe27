"""ETags from the version column: 304 on a current `If-None-Match`, 412 on a stale `If-Match`."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.factories import auth_headers


async def create(client: AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    response = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.headers["ETag"]


class TestETag:
    async def test_is_the_quoted_version_and_follows_updates(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id, created = await create(client, headers)

        read = await client.get(f"/api/v1/items/{item_id}", headers=headers)
        patched = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "Desk lamp"}, headers=headers
        )

        assert created == read.headers["ETag"] == '"1"'
        assert patched.headers["ETag"] == '"2"' == f'"{patched.json()["version"]}"'

    async def test_current_if_none_match_is_a_304_without_body(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id, tag = await create(client, headers)

        unchanged = await client.get(
            f"/api/v1/items/{item_id}", headers={**headers, "If-None-Match": f'W/"9", {tag}'}
        )
        await client.patch(f"/api/v1/items/{item_id}", json={"title": "New"}, headers=headers)
        changed = await client.get(
            f"/api/v1/items/{item_id}", headers={**headers, "If-None-Match": tag}
        )

        assert unchanged.status_code == 304
        assert unchanged.content == b""
        assert unchanged.headers["ETag"] == tag
        assert changed.status_code == 200
        assert changed.json()["title"] == "New"

    async def test_if_none_match_does_not_reveal_someone_elses_item(
        self, client: AsyncClient
    ) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        item_id, tag = await create(client, owner)

        response = await client.get(
            f"/api/v1/items/{item_id}", headers={**stranger, "If-None-Match": tag}
        )

        assert response.status_code == 404


class TestIfMatch:
    @pytest.mark.parametrize("method", ["PATCH", "DELETE"])
    async def test_stale_version_is_a_412_and_changes_nothing(
        self, client: AsyncClient, method: str
    ) -> None:
        headers = await auth_headers(client)
        item_id, tag = await create(client, headers)
        await client.patch(f"/api/v1/items/{item_id}", json={"title": "Second"}, headers=headers)

        response = await client.request(
            method,
            f"/api/v1/items/{item_id}",
            json={"title": "Lost update"} if method == "PATCH" else None,
            headers={**headers, "If-Match": tag},
        )
        current = await client.get(f"/api/v1/items/{item_id}", headers=headers)

        assert response.status_code == 412
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/precondition-failed")
        assert current.json()["title"] == "Second"

    async def test_current_version_patches_and_deletes(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id, tag = await create(client, headers)

        patched = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "B"}, headers={**headers, "If-Match": tag}
        )
        deleted = await client.delete(
            f"/api/v1/items/{item_id}",
            headers={**headers, "If-Match": patched.headers["ETag"]},
        )

        assert patched.status_code == 200
        assert deleted.status_code == 204

    @pytest.mark.parametrize("value", ['W/"1"', "1", "garbage", '"99999999999999999999"'])
    async def test_weak_or_malformed_tags_never_match(
        self, client: AsyncClient, value: str
    ) -> None:
        headers = await auth_headers(client)
        item_id, _ = await create(client, headers)

        response = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "B"}, headers={**headers, "If-Match": value}
        )

        assert response.status_code == 412

    async def test_star_and_no_header_are_unconditional(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id, _ = await create(client, headers)

        star = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "B"}, headers={**headers, "If-Match": "*"}
        )
        plain = await client.patch(f"/api/v1/items/{item_id}", json={"title": "C"}, headers=headers)

        assert (star.status_code, plain.status_code) == (200, 200)
        assert plain.json()["version"] == 3

    async def test_412_is_documented_for_writes(self, client: AsyncClient) -> None:
        document = (await client.get("/openapi.json")).json()
        operations = document["paths"]["/api/v1/items/{item_id}"]

        for method in ("patch", "delete"):
            assert "412" in operations[method]["responses"]
            names = {parameter["name"] for parameter in operations[method]["parameters"]}
            assert "if-match" in names
        assert "304" in operations["get"]["responses"]
