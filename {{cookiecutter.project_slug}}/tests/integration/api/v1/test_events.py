"""Admin access to the outbox's dead letters."""

from __future__ import annotations

import uuid
from typing import ClassVar

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.outbox import DEAD
from {{ cookiecutter.project_slug }}.repositories.outbox import OutboxRepository
from tests.factories import auth_headers, unique_email
from tests.integration.api.v1.test_users import make_admin


class Audited(Event):
    name: ClassVar[str] = "test.audited"
    aggregate: ClassVar[str] = "subject"

    subject: str


async def dead_letter(session_maker: SessionMaker) -> Audited:
    event = Audited(subject="s-1")
    async with session_maker() as session:
        outbox = OutboxRepository(session)
        await outbox.add(event)
        row = await outbox.get(event.event_id)
        assert row is not None
        row.status, row.attempts, row.last_error = DEAD, 10, "RuntimeError('boom')"
        await session.commit()
    return event


async def admin_headers(client: AsyncClient, session_maker: SessionMaker) -> dict[str, str]:
    email = unique_email()
    headers = await auth_headers(client, email)
    await make_admin(session_maker, email)
    return headers


class TestDeadLetters:
    async def test_admin_lists_them_and_redrives_one(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        event = await dead_letter(session_maker)
        headers = await admin_headers(client, session_maker)

        listing = await client.get("/api/v1/events/dead-letters", headers=headers)
        redriven = await client.post(f"/api/v1/events/{event.event_id}/redrive", headers=headers)
        again = await client.post(f"/api/v1/events/{event.event_id}/redrive", headers=headers)
        after = await client.get("/api/v1/events/dead-letters", headers=headers)

        assert listing.status_code == 200, listing.text
        [listed] = listing.json()["items"]
        assert listed["event_id"] == str(event.event_id)
        assert (listed["name"], listed["payload"]) == ("test.audited", {"subject": "s-1"})
        assert (listed["status"], listed["attempts"]) == ("dead", 10)
        assert listed["last_error"] == "RuntimeError('boom')"
        assert redriven.status_code == 200, redriven.text
        assert (redriven.json()["status"], redriven.json()["attempts"]) == ("pending", 0)
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert after.json()["total"] == 0

    async def test_an_unknown_event_is_a_404_problem(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin_headers(client, session_maker)

        response = await client.post(f"/api/v1/events/{uuid.uuid4()}/redrive", headers=headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_members_get_403_and_anonymous_401(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        member = await client.get("/api/v1/events/dead-letters", headers=headers)
        anonymous = await client.post(f"/api/v1/events/{uuid.uuid4()}/redrive")

        assert (member.status_code, anonymous.status_code) == (403, 401)
        assert member.headers["content-type"] == "application/problem+json"
