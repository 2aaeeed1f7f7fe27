"""Small typed helpers that build test data through the public API or the services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from httpx import AsyncClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import SessionMaker, UnitOfWork
from {{ cookiecutter.project_slug }}.models.outbox import OutboxEvent
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.audit import AuditRepository
from {{ cookiecutter.project_slug }}.repositories.outbox import event_of
from {{ cookiecutter.project_slug }}.services.audit import AuditLog

PASSWORD = "correct-horse-battery-9"

E = TypeVar("E", bound=Event)


@dataclass
class RecordedEvents:
    """The events recorded in the outbox since `since`, read in the test's transaction."""

    session_maker: SessionMaker
    # Rows up to this id were there before the test (committed by tests that commit for real).
    since: int = 0

    @classmethod
    async def start(cls, session_maker: SessionMaker) -> RecordedEvents:
        async with session_maker() as session:
            last = await session.scalar(select(func.max(OutboxEvent.id)))
        return cls(session_maker, last or 0)

    async def of(self, event_type: type[E]) -> list[E]:
        async with self.session_maker() as session:
            return await recorded_events(session, event_type, since=self.since)


async def recorded_events(session: AsyncSession, event_type: type[E], *, since: int = 0) -> list[E]:
    rows = await session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.name == event_type.name, OutboxEvent.id > since)
        .order_by(OutboxEvent.id)
    )
    return [event for row in rows if isinstance(event := event_of(row), event_type)]


def audit_log(uow: UnitOfWork) -> AuditLog:
    """An audit log for services built by hand in `uow`; entries meant for a transaction of
    their own are written in `uow` too (the test's transaction rolls everything back anyway)."""

    @asynccontextmanager
    async def same_transaction() -> AsyncIterator[AuditLog]:
        yield audit

    audit = AuditLog(uow, AuditRepository(uow.session), separate=same_transaction)
    return audit


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def register(client: AsyncClient, email: str | None = None) -> dict[str, object]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email or unique_email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def auth_headers(client: AsyncClient, email: str | None = None) -> dict[str, str]:
    """Register a fresh user and return the Authorization header of a login."""
    email = email or unique_email()
    await register(client, email)
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, object]:
    """The token pair of a successful login."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def admin_headers(client: AsyncClient, session_maker: SessionMaker) -> dict[str, str]:
    """Register a fresh user, make them an admin, and return the Authorization header of a
    login (a session: every permission of the role)."""
    email = unique_email()
    await register(client, email)
    async with session_maker() as session:
        await session.execute(update(User).where(User.email == email).values(role="admin"))
        await session.commit()
    return bearer((await login(client, email))["access_token"])


async def api_key_headers(
    client: AsyncClient, session: dict[str, str], scopes: list[str]
) -> dict[str, str]:
    """The `X-API-Key` header of a new key, created with a login's `session` headers and
    limited to `scopes`."""
    response = await client.post(
        "/api/v1/api-keys", json={"name": "scoped", "scopes": scopes}, headers=session
    )
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}
