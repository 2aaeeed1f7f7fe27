"""Sessions and account changes end to end: refresh rotation, logout, profile and password
changes, and admins changing accounts, against the app with its real token store."""

from __future__ import annotations

from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from tests.factories import PASSWORD, bearer, login, register, unique_email
from tests.integration.api.v1.test_users import make_admin

NEW_PASSWORD = "another-horse-battery-7"


async def refresh(client: AsyncClient, token: object) -> int:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return response.status_code


async def me(client: AsyncClient, token: object) -> int:
    return (await client.get("/api/v1/users/me", headers=bearer(token))).status_code


class TestRefresh:
    async def test_returns_a_new_pair_that_works(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)
        first = await login(client, email)

        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )

        assert response.status_code == 200
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert await me(client, second["access_token"]) == 200
        assert await refresh(client, second["refresh_token"]) == 200

    async def test_reusing_a_rotated_token_ends_the_whole_family(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)
        stolen = (await login(client, email))["refresh_token"]
        rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})
        current = rotated.json()["refresh_token"]

        reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen})

        assert reuse.status_code == 401
        assert reuse.headers["content-type"] == "application/problem+json"
        # The legitimate holder's newer token belonged to the same family: it is dead too.
        assert await refresh(client, current) == 401

    async def test_other_logins_survive_a_family_ending(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)
        laptop = await login(client, email)
        phone = await login(client, email)
        await refresh(client, laptop["refresh_token"])

        await refresh(client, laptop["refresh_token"])  # reuse: the laptop's family ends

        assert await refresh(client, phone["refresh_token"]) == 200


class TestLogout:
    async def test_revokes_the_access_token_and_the_refresh_token(
        self, client: AsyncClient
    ) -> None:
        email = unique_email()
        await register(client, email)
        pair = await login(client, email)
        other = await login(client, email)

        response = await client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=bearer(pair["access_token"]),
        )

        assert response.status_code == 204
        assert await me(client, pair["access_token"]) == 401
        assert await refresh(client, pair["refresh_token"]) == 401
        assert await me(client, other["access_token"]) == 200
        assert await refresh(client, other["refresh_token"]) == 200

    async def test_another_accounts_refresh_token_is_refused_and_nothing_is_revoked(
        self, client: AsyncClient
    ) -> None:
        mine = await login(client, str((await register(client))["email"]))
        theirs = await login(client, str((await register(client))["email"]))

        response = await client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": theirs["refresh_token"]},
            headers=bearer(mine["access_token"]),
        )

        assert response.status_code == 401
        assert await me(client, mine["access_token"]) == 200
        assert await refresh(client, theirs["refresh_token"]) == 200

    async def test_needs_an_access_token(self, client: AsyncClient) -> None:
        pair = await login(client, str((await register(client))["email"]))

        response = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}
        )

        assert response.status_code == 401
        assert await refresh(client, pair["refresh_token"]) == 200


class TestProfile:
    async def test_changes_the_name(self, client: AsyncClient) -> None:
        pair = await login(client, str((await register(client))["email"]))

        response = await client.patch(
            "/api/v1/users/me", json={"full_name": "Ada"}, headers=bearer(pair["access_token"])
        )

        assert response.status_code == 200
        assert response.json()["full_name"] == "Ada"

    async def test_a_new_email_needs_the_current_password(self, client: AsyncClient) -> None:
        email, new_email = unique_email(), unique_email()
        await register(client, email)
        headers = bearer((await login(client, email))["access_token"])

        missing = await client.patch("/api/v1/users/me", json={"email": new_email}, headers=headers)
        wrong = await client.patch(
            "/api/v1/users/me",
            json={"email": new_email, "current_password": "not-the-password"},
            headers=headers,
        )
        right = await client.patch(
            "/api/v1/users/me",
            json={"email": new_email, "current_password": PASSWORD},
            headers=headers,
        )

        assert (missing.status_code, wrong.status_code, right.status_code) == (422, 403, 200)
        assert wrong.headers["content-type"] == "application/problem+json"
        assert right.json()["email"] == new_email
        await login(client, new_email)

    async def test_an_email_in_use_is_a_conflict(self, client: AsyncClient) -> None:
        taken = str((await register(client))["email"])
        email = str((await register(client))["email"])
        headers = bearer((await login(client, email))["access_token"])

        response = await client.patch(
            "/api/v1/users/me",
            json={"email": taken.upper(), "current_password": PASSWORD},
            headers=headers,
        )

        assert response.status_code == 409

    async def test_role_cannot_be_set_by_oneself(self, client: AsyncClient) -> None:
        headers = bearer(
            (await login(client, str((await register(client))["email"])))["access_token"]
        )

        response = await client.patch("/api/v1/users/me", json={"role": "admin"}, headers=headers)

        assert response.status_code == 422
        assert (await client.get("/api/v1/users/me", headers=headers)).json()["role"] == "user"


class TestPasswordChange:
    async def test_wrong_current_password_changes_nothing(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)
        pair = await login(client, email)

        response = await client.post(
            "/api/v1/users/me/password",
            json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
            headers=bearer(pair["access_token"]),
        )

        assert response.status_code == 403
        await login(client, email, PASSWORD)
        assert await refresh(client, pair["refresh_token"]) == 200

    async def test_ends_every_refresh_token_of_the_user(self, client: AsyncClient) -> None:
        email = unique_email()
        await register(client, email)
        pair = await login(client, email)
        other = await login(client, email)

        response = await client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(pair["access_token"]),
        )

        assert response.status_code == 204
        assert await refresh(client, pair["refresh_token"]) == 401
        assert await refresh(client, other["refresh_token"]) == 401
        old = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401
        fresh = await login(client, email, NEW_PASSWORD)
        assert await refresh(client, fresh["refresh_token"]) == 200

    async def test_the_new_password_follows_the_policy(self, client: AsyncClient) -> None:
        pair = await login(client, str((await register(client))["email"]))

        response = await client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "password123"},
            headers=bearer(pair["access_token"]),
        )

        assert response.status_code == 422


class TestAccountAdministration:
    async def test_deactivation_stops_live_tokens_at_once(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        admin_email, email = unique_email(), unique_email()
        await register(client, admin_email)
        await make_admin(session_maker, admin_email)
        admin = bearer((await login(client, admin_email))["access_token"])
        user_id = (await register(client, email))["id"]
        pair = await login(client, email)

        response = await client.patch(
            f"/api/v1/users/{user_id}", json={"is_active": False}, headers=admin
        )

        assert response.status_code == 200
        assert response.json()["is_active"] is False
        assert await me(client, pair["access_token"]) == 401
        assert await refresh(client, pair["refresh_token"]) == 401
        again = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert again.status_code == 401
        # Re-enabled, the account logs in afresh; the sessions ended stay ended.
        await client.patch(f"/api/v1/users/{user_id}", json={"is_active": True}, headers=admin)
        await login(client, email)
        assert await refresh(client, pair["refresh_token"]) == 401

    async def test_a_new_role_applies_to_the_next_request(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        admin_email, email = unique_email(), unique_email()
        await register(client, admin_email)
        await make_admin(session_maker, admin_email)
        admin = bearer((await login(client, admin_email))["access_token"])
        user_id = (await register(client, email))["id"]
        user = bearer((await login(client, email))["access_token"])
        assert (await client.get("/api/v1/users", headers=user)).status_code == 403

        await client.patch(f"/api/v1/users/{user_id}", json={"role": "admin"}, headers=admin)

        assert (await client.get("/api/v1/users", headers=user)).status_code == 200

    async def test_admins_cannot_lock_themselves_out(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        admin_email = unique_email()
        admin_id = (await register(client, admin_email))["id"]
        await make_admin(session_maker, admin_email)
        admin = bearer((await login(client, admin_email))["access_token"])

        response = await client.patch(
            f"/api/v1/users/{admin_id}", json={"is_active": False}, headers=admin
        )

        assert response.status_code == 403
        assert await me(client, admin["Authorization"].removeprefix("Bearer ")) == 200

    async def test_unknown_account_is_a_404(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        admin_email = unique_email()
        await register(client, admin_email)
        await make_admin(session_maker, admin_email)
        admin = bearer((await login(client, admin_email))["access_token"])

        response = await client.patch(
            "/api/v1/users/00000000-0000-0000-0000-000000000000",
            json={"is_active": False},
            headers=admin,
        )

        assert response.status_code == 404
