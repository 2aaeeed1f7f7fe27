"""`GET /items/{id}` through the cache: served from it, never stale after a change returns, and
access still checked per reader. A cache that is down: `test_items_cache_redis.py`."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.item import Item
from tests.factories import auth_headers
from tests.integration.api.v1.test_items import create_item


async def title_behind_the_cache(session_maker: SessionMaker, item_id: str, title: str) -> None:
    """Change a row without the service, so nothing invalidates the cache."""
    async with session_maker() as session:
        await session.execute(update(Item).where(Item.id == item_id).values(title=title))
        await session.commit()


class TestCachedRead:
    async def test_a_read_is_served_from_the_cache(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers, "cached")
        assert (await client.get(f"/api/v1/items/{item_id}", headers=headers)).status_code == 200

        await title_behind_the_cache(session_maker, item_id, "changed behind its back")
        response = await client.get(f"/api/v1/items/{item_id}", headers=headers)

        assert response.json()["title"] == "cached"

    async def test_a_read_after_a_patch_returns_is_never_stale(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers, "v0")

        for version in range(1, 6):
            assert (await client.get(f"/api/v1/items/{item_id}", headers=headers)).is_success
            patched = await client.patch(
                f"/api/v1/items/{item_id}", json={"title": f"v{version}"}, headers=headers
            )
            assert patched.status_code == 200

            read = await client.get(f"/api/v1/items/{item_id}", headers=headers)
            assert read.json()["title"] == f"v{version}"
            assert read.json()["version"] == patched.json()["version"]

    async def test_a_deleted_item_is_gone_at_once(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        item_id = await create_item(client, headers)
        assert (await client.get(f"/api/v1/items/{item_id}", headers=headers)).status_code == 200

        assert (await client.delete(f"/api/v1/items/{item_id}", headers=headers)).status_code == 204

        assert (await client.get(f"/api/v1/items/{item_id}", headers=headers)).status_code == 404

    async def test_a_cached_item_is_still_hidden_from_strangers(self, client: AsyncClient) -> None:
        owner, stranger = await auth_headers(client), await auth_headers(client)
        item_id = await create_item(client, owner)
        assert (await client.get(f"/api/v1/items/{item_id}", headers=owner)).status_code == 200

        response = await client.get(f"/api/v1/items/{item_id}", headers=stranger)

        assert response.status_code == 404
