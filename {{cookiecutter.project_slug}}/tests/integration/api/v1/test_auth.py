from __future__ import annotations

import uuid

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.services.user import UserRegistered
from tests.factories import PASSWORD, RecordedEvents, register, unique_email


class TestRegister:
    async def test_creates_a_user_and_notifies_after_commit(
        self, client: AsyncClient, events: RecordedEvents
    ) -> None:
        email = unique_email()

        response = await client.post(
            "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
        )

        assert response.status_code == 201
        body = response.json()
        assert body["email"] == email
        assert body["role"] == "user"
        assert "password" not in body
        assert "password_hash" not in body
        [event] = await events.of(UserRegistered)
        assert event.user_id == uuid.UUID(body["id"])
        assert event.request_id == response.headers["X-Request-ID"]

    async def test_duplicate_email_is_a_409_and_notifies_nothing(
        self, client: AsyncClient, events: RecordedEvents
    ) -> None:
        email = unique_email()
        await register(client, email)

        response = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )

        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert len(await events.of(UserRegistered)) == 1

    async def test_common_password_is_refused(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": "password123"}
        )

        assert response.status_code == 422
        assert "common" in response.json()["detail"]

    async def test_short_password_is_refused(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": "short"}
        )

        assert response.status_code == 422


class TestLogin:
    async def test_json_login_returns_a_token_pair(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)

        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )

        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert body["access_token"]
        assert body["refresh_token"]

    async def test_oauth2_form_login_works(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)

        response = await client.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        )

        assert response.status_code == 200
        assert response.json()["access_token"]

    async def test_wrong_password_and_unknown_email_answer_the_same(
        self, client: AsyncClient
    ) -> None:
        email = unique_email()
        await register(client, email)

        wrong_password = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "not-the-password"}
        )
        unknown_email = await client.post(
            "/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD}
        )

        assert wrong_password.status_code == unknown_email.status_code == 401
        assert wrong_password.json()["detail"] == unknown_email.json()["detail"]
        assert wrong_password.headers["www-authenticate"] == "Bearer"

    async def test_unsupported_media_type_is_a_415(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/login", content=b"x", headers={"content-type": "text/plain"}
        )

        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"

    async def test_invalid_json_body_is_a_422_listing_fields(self, client: AsyncClient) -> None:
        response = await client.post("/api/v1/auth/login", json={"email": "nope"})

        assert response.status_code == 422
        fields = {error["field"] for error in response.json()["errors"]}
        assert {"email", "password"} <= fields
