"""Small typed helpers that build test data through the public API or the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from httpx import AsyncClient

PASSWORD = "correct-horse-battery-9"


@dataclass
class RecordingNotifier:
    """Stands in for the broker in API tests; end-to-end tests use a real worker."""

    registered: list[uuid.UUID] = field(default_factory=list)
    created_items: list[uuid.UUID] = field(default_factory=list)

    def user_registered(self, user_id: uuid.UUID) -> None:
        self.registered.append(user_id)

    def item_created(self, item_id: uuid.UUID) -> None:
        self.created_items.append(item_id)


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
