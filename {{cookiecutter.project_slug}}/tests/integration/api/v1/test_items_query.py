"""Listing items: offset and cursor pagination, sorting against the whitelist, filters."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.item import CURSOR_SCOPE
from tests.factories import auth_headers, unique_email

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


async def create_items(client: AsyncClient, headers: dict[str, str], *titles: str) -> list[str]:
    ids = []
    for title in titles:
        response = await client.post("/api/v1/items", json={"title": title}, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def set_created_at(session_maker: SessionMaker, ids: list[str]) -> None:
    """Rows of one transaction share `now()`; spread them a day apart, in the given order."""
    async with session_maker() as session:
        for day, item_id in enumerate(ids):
            await session.execute(
                update(Item)
                .where(Item.id == uuid.UUID(item_id))
                .values(created_at=EPOCH + timedelta(days=day))
            )
        await session.commit()


async def admin_headers(client: AsyncClient, session_maker: SessionMaker) -> dict[str, str]:
    email = unique_email()
    headers = await auth_headers(client, email)
    async with session_maker() as session:
        await session.execute(update(User).where(User.email == email).values(role="admin"))
        await session.commit()
    return headers


async def titles(client: AsyncClient, headers: dict[str, str], **params: str | int) -> list[str]:
    response = await client.get("/api/v1/items", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


class TestSort:
    async def test_default_is_newest_first(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        await set_created_at(session_maker, await create_items(client, headers, "a", "b", "c"))

        assert await titles(client, headers) == ["c", "b", "a"]

    async def test_sorts_by_several_fields_each_in_its_direction(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        ids = await create_items(client, headers, "b", "a", "d", "c")
        # Two days, two titles each: -created_at groups the days, title orders within one.
        await set_created_at(session_maker, [ids[0], ids[2]])
        await set_created_at(session_maker, [ids[1], ids[3]])

        assert await titles(client, headers, sort="-created_at,title") == ["c", "d", "a", "b"]
        assert await titles(client, headers, sort="title") == ["a", "b", "c", "d"]
        assert await titles(client, headers, sort="-title") == ["d", "c", "b", "a"]

    async def test_unknown_field_is_a_422_naming_the_allowed_ones(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)

        response = await client.get(
            "/api/v1/items", params={"sort": "-created_at,password"}, headers=headers
        )

        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["field"] == "sort"
        assert "'password'" in error["message"]
        assert "created_at, updated_at, title" in error["message"]


class TestFilters:
    async def test_q_matches_title_text_in_any_case_and_literally(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        await create_items(client, headers, "Brass Lamp", "lamp shade", "100% wool", "1000 wool")

        assert sorted(await titles(client, headers, q="LAMP")) == ["Brass Lamp", "lamp shade"]
        # `%` is a character to find, not a wildcard.
        assert await titles(client, headers, q="0%") == ["100% wool"]

    async def test_created_after_and_before_are_exclusive_bounds(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        await set_created_at(session_maker, await create_items(client, headers, "d0", "d1", "d2"))

        after = await titles(client, headers, created_after=EPOCH.isoformat(), sort="title")
        before = await titles(
            client, headers, created_before=(EPOCH + timedelta(days=2)).isoformat()
        )

        assert after == ["d1", "d2"]
        assert before == ["d1", "d0"]

    async def test_owner_id_of_someone_else_is_403_for_a_user(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(
            "/api/v1/items", params={"owner_id": str(uuid.uuid4())}, headers=headers
        )

        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    async def test_admin_lists_one_owner(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        other = await auth_headers(client)
        await create_items(client, owner, "theirs")
        await create_items(client, other, "not theirs")
        owner_id = (await client.get("/api/v1/users/me", headers=owner)).json()["id"]
        admin = await admin_headers(client, session_maker)

        assert await titles(client, admin, owner_id=owner_id) == ["theirs"]

    @pytest.mark.parametrize(
        "params",
        [
            {"page": "1", "cursor": "abc"},
            {"page_size": "5", "limit": "5"},
            {"colour": "red"},
            {"limit": "101"},
            {"q": ""},
        ],
    )
    async def test_bad_combinations_and_unknown_parameters_are_422(
        self, client: AsyncClient, params: dict[str, str]
    ) -> None:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/items", params=params, headers=headers)

        assert response.status_code == 422, response.text


class TestCursor:
    async def test_walks_every_item_once_in_order(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        names = [f"t{n}" for n in range(7)]
        await set_created_at(session_maker, await create_items(client, headers, *names))

        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 3, "sort": "created_at"}
        pages = 0
        while True:
            response = await client.get("/api/v1/items", params=params, headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"items", "next_cursor"}
            seen += [item["title"] for item in body["items"]]
            pages += 1
            if body["next_cursor"] is None:
                break
            # The cursor carries the sort; sending the same sort again is fine too.
            params = {"cursor": body["next_cursor"], "limit": 3}

        assert seen == names
        assert pages == 3

    async def test_ties_in_the_sort_are_broken_by_id(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        # One transaction: every row has the same created_at and the same title.
        created = await create_items(client, headers, *["same"] * 5)

        ids: list[str] = []
        params: dict[str, str | int] = {"limit": 2}
        while True:
            body = (await client.get("/api/v1/items", params=params, headers=headers)).json()
            ids += [item["id"] for item in body["items"]]
            if body["next_cursor"] is None:
                break
            params = {"cursor": body["next_cursor"], "limit": 2}

        assert sorted(ids) == sorted(created)
        assert len(set(ids)) == 5

    async def first_cursor(self, client: AsyncClient, headers: dict[str, str]) -> str:
        await create_items(client, headers, "a", "b")
        response = await client.get("/api/v1/items", params={"limit": 1}, headers=headers)
        cursor: str = response.json()["next_cursor"]
        assert cursor
        return cursor

    @pytest.mark.parametrize(
        "tamper",
        [
            pytest.param(lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"), id="edited"),
            pytest.param(lambda c: c[:10], id="truncated"),
            pytest.param(lambda _: "not a cursor!", id="garbage"),
            pytest.param(lambda _: "%%%", id="not-base64"),
            pytest.param(
                lambda _: CursorCodec("another deployment's key").encode(
                    CURSOR_SCOPE, {"sort": "-created_at", "after": []}
                ),
                id="foreign-key",
            ),
            pytest.param(
                lambda _: CursorCodec("k").encode("users", {"sort": "x", "after": []}),
                id="other-resource",
            ),
        ],
    )
    async def test_a_cursor_it_did_not_issue_is_a_400(
        self, client: AsyncClient, tamper: Callable[[str], str]
    ) -> None:
        headers = await auth_headers(client)
        cursor = await self.first_cursor(client, headers)

        response = await client.get(
            "/api/v1/items", params={"cursor": tamper(cursor)}, headers=headers
        )

        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/invalid-cursor")

    async def test_signed_cursor_with_values_that_do_not_fit_is_a_400(
        self, client: AsyncClient, settings: Settings
    ) -> None:
        headers = await auth_headers(client)
        codec = CursorCodec(settings.signing_key)
        bad: list[dict[str, object]] = [
            {"sort": "-created_at", "after": ["yesterday", "not-a-uuid"]},
            {"sort": "-created_at", "after": [1]},
            {"sort": "-password", "after": []},
            {"after": []},
        ]
        for state in bad:
            response = await client.get(
                "/api/v1/items",
                params={"cursor": codec.encode(CURSOR_SCOPE, state)},
                headers=headers,
            )
            assert response.status_code == 400, (state, response.text)

    async def test_a_cursor_for_another_sort_is_a_400(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        cursor = await self.first_cursor(client, headers)

        response = await client.get(
            "/api/v1/items", params={"cursor": cursor, "sort": "title"}, headers=headers
        )

        assert response.status_code == 400
        assert "sort=-created_at" in response.json()["detail"]
