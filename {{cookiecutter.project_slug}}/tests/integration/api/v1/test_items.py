from __future__ import annotations

import uuid

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.services.item import ItemCreated
from tests.factories import RecordedEvents, admin_headers, api_key_headers, auth_headers


async def create_item(client: AsyncClient, headers: dict[str, str], title: str = "A") -> str:
    response = await client.post("/api/v1/items", json={"title": title}, headers=headers)
    assert response.status_code == 201, response.text
    item_id: str = response.json()["id"]
    return item_id


class TestCreateItem:
    async def test_creates_for_the_owner_and_enqueues_processing(
        self, client: AsyncClient, events: RecordedEvents
    ) -> None:
        headers = await auth_headers(client)

        response = await client.post(
            "/api/v1/items", json={"title": "Lamp", "description": "Brass"}, headers=headers
        )

        assert response.status_code == 201
        body = response.json()
        assert body["title"] == "Lamp"
        assert body["description"] == "Brass"
        assert body["version"] == 1
        assert body["processed_at"] is None
        [event] = await events.of(ItemCreated)
        assert event.item_id == uuid.UUID(body["id"])
        assert event.actor_id == uuid.UUID(body["owner_id"])

    async def test_anonymous_gets_401(self, client: AsyncClient) -> None:
        response = await client.post("/api/v1/items", json={"title": "Lamp"})

        assert response.status_code == 401

    async def test_empty_title_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post("/api/v1/items", json={"title": ""}, headers=headers)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "title"


class TestGetItem:
    async def test_owner_reads_their_item(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers, "Mine")

        response = await client.get(f"/api/v1/items/{item_id}", headers=headers)

        assert response.status_code == 200
        assert response.json()["title"] == "Mine"

    async def test_someone_elses_item_looks_missing(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        item_id = await create_item(client, owner)

        response = await client.get(f"/api/v1/items/{item_id}", headers=stranger)

        assert response.status_code == 404

    async def test_unknown_id_is_a_404(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(f"/api/v1/items/{uuid.uuid4()}", headers=headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_malformed_id_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/items/not-a-uuid", headers=headers)

        assert response.status_code == 422


class TestListItems:
    async def test_pages_through_own_items_newest_first(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        other = await auth_headers(client)
        titles = [f"item {n}" for n in range(5)]
        for title in titles:
            await create_item(client, headers, title)
        await create_item(client, other, "not mine")

        first = await client.get("/api/v1/items", params={"page_size": 2}, headers=headers)
        last = await client.get(
            "/api/v1/items", params={"page": 3, "page_size": 2}, headers=headers
        )

        assert first.status_code == 200
        body = first.json()
        assert body["total"] == 5
        assert body["pages"] == 3
        assert len(body["items"]) == 2
        assert len(last.json()["items"]) == 1
        seen = {item["title"] for item in body["items"]} | {
            item["title"] for item in last.json()["items"]
        }
        assert "not mine" not in seen

    async def test_page_size_over_100_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/items", params={"page_size": 101}, headers=headers)

        assert response.status_code == 422


class TestUpdateItem:
    async def test_patch_changes_only_given_fields_and_bumps_version(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers, "Old")

        response = await client.patch(
            f"/api/v1/items/{item_id}", json={"description": "New text"}, headers=headers
        )

        assert response.status_code == 200
        body = response.json()
        assert body["title"] == "Old"
        assert body["description"] == "New text"
        assert body["version"] == 2

    async def test_stranger_cannot_patch(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        item_id = await create_item(client, owner)

        response = await client.patch(
            f"/api/v1/items/{item_id}", json={"title": "Mine now"}, headers=stranger
        )
        unchanged = await client.get(f"/api/v1/items/{item_id}", headers=owner)

        assert response.status_code == 404
        assert unchanged.json()["title"] == "A"


class TestDeleteItem:
    async def test_owner_deletes_and_it_is_gone(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers)

        deleted = await client.delete(f"/api/v1/items/{item_id}", headers=headers)
        again = await client.get(f"/api/v1/items/{item_id}", headers=headers)

        assert deleted.status_code == 204
        assert again.status_code == 404

    async def test_stranger_cannot_delete(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        item_id = await create_item(client, owner)

        response = await client.delete(f"/api/v1/items/{item_id}", headers=stranger)

        assert response.status_code == 404
        assert (await client.get(f"/api/v1/items/{item_id}", headers=owner)).status_code == 200


class TestAdminVisibility:
    """An admin sees and changes everyone's items only with `items:admin` in the permissions
    of this request: a session has it, an API key only when it was scoped with it."""

    async def test_an_admin_session_sees_and_changes_everyones_items(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        admin = await admin_headers(client, session_maker)
        item_id = await create_item(client, owner, "theirs")
        url = f"/api/v1/items/{item_id}"

        listed = await client.get("/api/v1/items", params={"page_size": 100}, headers=admin)
        read = await client.get(url, headers=admin)
        patched = await client.patch(url, json={"title": "moderated"}, headers=admin)
        deleted = await client.delete(url, headers=admin)

        assert item_id in {item["id"] for item in listed.json()["items"]}
        assert read.status_code == 200
        assert patched.status_code == 200
        assert patched.json()["title"] == "moderated"
        assert deleted.status_code == 204

    async def test_an_admins_key_without_items_admin_reaches_only_their_own_items(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        admin = await admin_headers(client, session_maker)
        key = await api_key_headers(client, admin, ["items:read", "items:write"])
        theirs = await create_item(client, owner, "theirs")
        mine = await create_item(client, key, "mine")
        url = f"/api/v1/items/{theirs}"

        read = await client.get(url, headers=key)
        patched = await client.patch(url, json={"title": "taken"}, headers=key)
        deleted = await client.delete(url, headers=key)
        listed = await client.get("/api/v1/items", params={"page_size": 100}, headers=key)
        by_cursor = await client.get("/api/v1/items", params={"limit": 100}, headers=key)
        filtered = await client.get(
            "/api/v1/items", params={"owner_id": str(uuid.uuid4())}, headers=key
        )

        # Exactly what a plain user gets: someone else's item looks missing.
        assert (read.status_code, patched.status_code, deleted.status_code) == (404, 404, 404)
        assert [item["id"] for item in listed.json()["items"]] == [mine]
        assert listed.json()["total"] == 1
        assert [item["id"] for item in by_cursor.json()["items"]] == [mine]
        assert filtered.status_code == 403
        assert filtered.headers["content-type"] == "application/problem+json"
        unchanged = await client.get(url, headers=owner)
        assert unchanged.status_code == 200
        assert unchanged.json()["title"] == "theirs"
        # The same admin, signed in, still reaches it.
        assert (await client.get(url, headers=admin)).status_code == 200
