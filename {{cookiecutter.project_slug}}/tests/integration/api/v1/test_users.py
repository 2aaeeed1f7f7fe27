from __future__ import annotations

import uuid

from httpx import AsyncClient
from sqlalchemy import text, update

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.user import User
from tests.factories import auth_headers, unique_email


async def make_admin(session_maker: SessionMaker, email: str) -> None:
    async with session_maker() as session:
        await session.execute(update(User).where(User.email == email).values(role="admin"))
        await session.commit()


class TestMe:
    async def test_returns_the_signed_in_user(self, client: AsyncClient) -> None:
        email = unique_email()
        headers = await auth_headers(client, email)

        response = await client.get("/api/v1/users/me", headers=headers)

        assert response.status_code == 200
        assert response.json()["email"] == email

    async def test_anonymous_gets_401_with_challenge(self, client: AsyncClient) -> None:
        response = await client.get("/api/v1/users/me")

        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"

    async def test_garbage_token_gets_401(self, client: AsyncClient) -> None:
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": "Bearer not.a.token"}
        )

        assert response.status_code == 401

    async def test_refresh_token_is_not_an_access_token(self, client: AsyncClient) -> None:
        email = unique_email()
        await auth_headers(client, email)
        login = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "correct-horse-battery-9"}
        )
        refresh = login.json()["refresh_token"]

        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {refresh}"}
        )

        assert response.status_code == 401


class TestAdminRoutes:
    async def test_non_admin_gets_403(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get("/api/v1/users", headers=headers)

        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    async def test_admin_lists_and_reads_users(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        email = unique_email()
        headers = await auth_headers(client, email)
        await make_admin(session_maker, email)

        listing = await client.get("/api/v1/users", params={"page_size": 1}, headers=headers)
        me = await client.get("/api/v1/users/me", headers=headers)
        one = await client.get(f"/api/v1/users/{me.json()['id']}", headers=headers)
        missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=headers)

        assert listing.status_code == 200
        assert listing.json()["page_size"] == 1
        assert listing.json()["total"] >= 1
        assert one.json()["email"] == email
        assert missing.status_code == 404


class TestPhone:
    async def test_the_phone_is_stored_encrypted_and_read_back(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        email = unique_email()
        headers = await auth_headers(client, email)

        updated = await client.patch(
            "/api/v1/users/me", json={"phone": "+44 20 7946 0958"}, headers=headers
        )
        me = await client.get("/api/v1/users/me", headers=headers)

        assert updated.status_code == 200, updated.text
        assert me.json()["phone"] == "+44 20 7946 0958"
        async with session_maker() as session:
            stored = await session.scalar(
                text("SELECT phone FROM users WHERE email = :email"), {"email": email}
            )
        assert stored is not None
        assert "7946" not in stored

    async def test_null_removes_the_phone(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        await client.patch("/api/v1/users/me", json={"phone": "+1 555 0100"}, headers=headers)

        cleared = await client.patch("/api/v1/users/me", json={"phone": None}, headers=headers)

        assert cleared.json()["phone"] is None

    async def test_something_that_is_not_a_phone_number_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.patch(
            "/api/v1/users/me", json={"phone": "call me maybe"}, headers=headers
        )

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"].endswith("phone")
