"""Races against real PostgreSQL, with committed data: requests run at once on their own
connections, as they do in a server. The app here commits for real, so each test removes its
users (and with them, their items and idempotency keys) afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, select

from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import create_engine, create_session_maker
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from tests.conftest import serving
from tests.factories import auth_headers, unique_email

RACERS = 6


@asynccontextmanager
async def without_relay(settings: Settings) -> AsyncIterator[Container]:
    # Events stay in the outbox: a new item's background processing would otherwise bump its
    # version in the middle of a race, whenever the in-process relay got to it.
    async with build_container(settings) as container:
        yield dataclasses.replace(container, kick_relay=lambda: None)


@pytest.fixture
async def committing_client(settings: Settings) -> AsyncIterator[tuple[AsyncClient, list[str]]]:
    emails: list[str] = []
    quiet = settings.model_copy(update={"outbox_relay_interval_seconds": 3600})
    async with serving(create_app(quiet, container_factory=without_relay)) as client:
        yield client, emails
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_session_maker(engine)() as session:
            await session.execute(delete(User).where(User.email.in_(emails)))
            await session.commit()
    finally:
        await engine.dispose()


async def count_items(settings: Settings, owner_email: str) -> int:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_session_maker(engine)() as session:
            query = (
                select(func.count())
                .select_from(Item)
                .join(User, User.id == Item.owner_id)
                .where(User.email == owner_email)
            )
            return (await session.execute(query)).scalar_one()
    finally:
        await engine.dispose()


async def test_concurrent_duplicates_create_one_item(
    committing_client: tuple[AsyncClient, list[str]], settings: Settings
) -> None:
    client, emails = committing_client
    emails.append(unique_email())
    headers = {**await auth_headers(client, emails[0]), "Idempotency-Key": str(uuid.uuid4())}

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/items", json={"title": "Once"}, headers=headers)
            for _ in range(RACERS)
        )
    )

    # One wins; the others waited for it and got its response.
    assert [response.status_code for response in responses] == [201] * RACERS, [
        response.text for response in responses
    ]
    assert len({response.json()["id"] for response in responses}) == 1
    replays = [response for response in responses if "Idempotent-Replayed" in response.headers]
    assert len(replays) == RACERS - 1
    assert await count_items(settings, emails[0]) == 1


async def test_concurrent_writes_with_one_etag_let_exactly_one_through(
    committing_client: tuple[AsyncClient, list[str]],
) -> None:
    client, emails = committing_client
    emails.append(unique_email())
    headers = await auth_headers(client, emails[0])
    created = await client.post("/api/v1/items", json={"title": "Start"}, headers=headers)
    item_id, tag = created.json()["id"], created.headers["ETag"]

    responses = await asyncio.gather(
        *(
            client.patch(
                f"/api/v1/items/{item_id}",
                json={"title": f"writer {n}"},
                headers={**headers, "If-Match": tag},
            )
            for n in range(RACERS)
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (RACERS - 1), [response.text for response in responses]
    winner = next(response for response in responses if response.status_code == 200)
    final = await client.get(f"/api/v1/items/{item_id}", headers=headers)
    assert final.json()["title"] == winner.json()["title"]
    assert final.json()["version"] == 2
