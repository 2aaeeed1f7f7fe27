"""Every change to an item leaves an audit entry, committed with the change."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry
from tests.factories import auth_headers


async def item_entries(session_maker: SessionMaker, item_id: str) -> list[AuditEntry]:
    async with session_maker() as session:
        query = (
            select(AuditEntry)
            .where(AuditEntry.resource == "item", AuditEntry.resource_id == item_id)
            .order_by(AuditEntry.id)
        )
        return list((await session.scalars(query)).all())


async def test_create_update_and_delete_are_audited_with_actor_and_request_id(
    client: AsyncClient, session_maker: SessionMaker
) -> None:
    headers = await auth_headers(client)
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    traced = {**headers, "X-Request-ID": "audit-test-0001"}

    created = await client.post("/api/v1/items", json={"title": "first"}, headers=traced)
    item_id = created.json()["id"]
    await client.patch(f"/api/v1/items/{item_id}", json={"title": "second"}, headers=headers)
    await client.delete(f"/api/v1/items/{item_id}", headers=headers)

    entries = await item_entries(session_maker, item_id)
    assert [entry.action for entry in entries] == ["item.create", "item.update", "item.delete"]
    assert {str(entry.actor_id) for entry in entries} == {me["id"]}
    assert entries[0].changes == {"title": "first", "description": None}
    assert entries[1].changes == {"title": "second"}
    assert entries[0].request_id == "audit-test-0001"


async def test_a_refused_change_leaves_no_entry(
    client: AsyncClient, session_maker: SessionMaker
) -> None:
    owner, stranger = await auth_headers(client), await auth_headers(client)
    created = await client.post("/api/v1/items", json={"title": "mine"}, headers=owner)
    item_id = created.json()["id"]

    response = await client.patch(f"/api/v1/items/{item_id}", json={"title": "x"}, headers=stranger)

    assert response.status_code == 404
    assert [entry.action for entry in await item_entries(session_maker, item_id)] == ["item.create"]
