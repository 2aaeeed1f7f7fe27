"""GET /api/v1/audit-log, and the security events that reach it in transactions of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import asyncpg_dsn, make_settings, serving
from tests.factories import PASSWORD, auth_headers, bearer, login, register, unique_email
from tests.integration.api.v1.test_users import make_admin
from tests.processes import fresh_database
from tests.services import ServiceUrls


async def admin_headers(client: AsyncClient, session_maker: SessionMaker) -> dict[str, str]:
    email = unique_email()
    await register(client, email)
    await make_admin(session_maker, email)
    tokens = await login(client, email)
    return bearer(tokens["access_token"])


class TestListAuditEntries:
    async def test_pages_newest_first_by_cursor_without_gaps_or_repeats(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin_headers(client, session_maker)
        emails = [unique_email() for _ in range(5)]
        for email in emails:
            await register(client, email)

        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor is not None:
                params["cursor"] = cursor
            response = await client.get("/api/v1/audit-log", params=params, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break

        ids = [entry["id"] for entry in seen]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == len(ids)
        created = [entry["changes"]["email"] for entry in seen if entry["action"] == "user.create"]
        # Newest first: the last registrations come first.
        assert created[:5] == emails[::-1]
        assert all(entry["hash"] and entry["prev_hash"] for entry in seen)

    async def test_members_get_403(self, client: AsyncClient) -> None:
        response = await client.get("/api/v1/audit-log", headers=await auth_headers(client))

        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("cursor", ["%%%", "bm90LWEtbnVtYmVy", "OTk5OTk5OTk5OTk5OTk5OTk5OQ"])
    async def test_a_foreign_cursor_is_a_422_naming_it(
        self, client: AsyncClient, session_maker: SessionMaker, cursor: str
    ) -> None:
        headers = await admin_headers(client, session_maker)

        response = await client.get("/api/v1/audit-log", params={"cursor": cursor}, headers=headers)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"


@pytest.fixture(scope="module")
async def committed_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of this module's own: a refused request rolls its transaction back for real,
    so only this shows that its security event was committed separately."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


async def actions(url: str) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT action FROM audit_log ORDER BY id")
    finally:
        await connection.close()
    return [row["action"] for row in rows]


class TestSecurityEvents:
    async def test_logins_logout_and_denials_are_kept_even_when_the_request_fails(
        self, committed_url: str, settings: Settings
    ) -> None:
        # The suite's settings (and so its stores), on this module's database.
        app = create_app(make_settings(database_url=committed_url, redis_url=settings.redis_url))
        async with serving(app) as client:
            email = unique_email()
            await register(client, email)
            refused = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD + "x"}
            )
            tokens = await login(client, email)
            denied = await client.get("/api/v1/audit-log", headers=bearer(tokens["access_token"]))
            logout = await client.post(
                "/api/v1/auth/logout",
                json={"refresh_token": tokens["refresh_token"]},
                headers=bearer(tokens["access_token"]),
            )

        assert (refused.status_code, denied.status_code, logout.status_code) == (401, 403, 204)
        assert await actions(committed_url) == [
            "user.create",
            "auth.login_failed",
            "auth.login",
            "permission.denied",
            "auth.logout",
        ]
