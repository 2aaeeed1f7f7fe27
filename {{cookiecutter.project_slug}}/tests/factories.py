"""Small typed helpers that build test data through the public API or the services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.repositories.audit import AuditRepository
from {{ cookiecutter.project_slug }}.services.audit import AuditLog

PASSWORD = "correct-horse-battery-9"


@dataclass
class RecordingPublisher:
    """Stands in for the broker in API tests; end-to-end tests use a real worker."""

    published: list[Event] = field(default_factory=list)

    def publish(self, event: Event) -> None:
        self.published.append(event)


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
