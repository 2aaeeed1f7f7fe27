"""API keys end to end: issued once, listed without secrets, scoped, revocable, rate-limited
on their own bucket, and never able to manage the account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.core import api_keys
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models.api_key import ApiKey
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry
from tests.conftest import make_settings, serving
from tests.factories import auth_headers, unique_email
from tests.integration.api.v1.test_users import make_admin


async def create_key(
    client: AsyncClient, headers: dict[str, str], **body: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["items:read"], **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


class TestCreateApiKey:
    async def test_the_key_is_shown_once_in_its_format(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        created = await create_key(client, headers)
        listed = await client.get("/api/v1/api-keys", headers=headers)

        key = str(created["key"])
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition(".")
        assert prefix == api_keys.PREFIX
        assert len(key_id) == api_keys.KEY_ID_LENGTH
        assert len(secret) >= 40
        assert created["prefix"] == f"{prefix}_{key_id}"
        assert created["scopes"] == ["items:read"]
        assert created["last_used_at"] is None
        [entry] = listed.json()
        assert entry["prefix"] == created["prefix"]
        assert "key" not in entry
        assert secret not in listed.text

    async def test_only_a_keyed_hash_of_the_secret_is_stored(
        self, client: AsyncClient, session_maker: SessionMaker, settings: Settings
    ) -> None:
        created = await create_key(client, await auth_headers(client))
        secret = str(created["key"]).partition(".")[2]

        async with session_maker() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.id == created["id"]))

        assert row is not None
        assert secret not in row.secret_hash
        assert row.secret_hash == api_keys.hash_secret(secret, settings.api_key_pepper_bytes)

    async def test_scopes_beyond_the_owners_permissions_are_refused(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)

        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "escalate", "scopes": ["items:read", "users:admin"]},
            headers=headers,
        )

        assert response.status_code == 403
        assert "users:admin" in response.json()["detail"]
        assert (await client.get("/api/v1/api-keys", headers=headers)).json() == []

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "x", "scopes": []},
            {"name": "x", "scopes": ["everything"]},
            {"name": "", "scopes": ["items:read"]},
            {"name": "x", "scopes": ["items:read"], "expires_at": "2001-01-01T00:00:00Z"},
            {"name": "x", "scopes": ["items:read"], "expires_at": "2030-01-01T00:00:00"},
            {"name": "x", "scopes": ["items:read"], "expires_at": "9999-12-31T23:00:00-05:00"},
            {"name": "x", "scopes": ["items:read"], "owner_id": str(uuid.uuid4())},
        ],
        ids=[
            "no-scopes",
            "unknown-scope",
            "empty-name",
            "past-expiry",
            "no-offset",
            "out-of-range",
            "unknown-field",
        ],
    )
    async def test_invalid_requests_are_422(
        self, client: AsyncClient, body: dict[str, object]
    ) -> None:
        response = await client.post(
            "/api/v1/api-keys", json=body, headers=await auth_headers(client)
        )

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    async def test_an_expiry_is_kept_in_utc(self, client: AsyncClient) -> None:
        created = await create_key(
            client, await auth_headers(client), expires_at="2030-01-01T02:00:00+02:00"
        )

        assert created["expires_at"] == "2030-01-01T00:00:00Z"


class TestUsingApiKeys:
    @pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
    async def test_a_key_acts_for_its_owner(self, client: AsyncClient, header: str) -> None:
        email = unique_email()
        created = await create_key(client, await auth_headers(client, email))
        value = f"Bearer {created['key']}" if header == "Authorization" else str(created["key"])

        response = await client.get("/api/v1/users/me", headers={header: value})

        assert response.status_code == 200, response.text
        assert response.json()["email"] == email

    async def test_scopes_narrow_the_owners_permissions(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        email = unique_email()
        headers = await auth_headers(client, email)
        await make_admin(session_maker, email)
        reader = await create_key(client, headers, scopes=["items:read"])
        admin = await create_key(client, headers, scopes=["users:admin"])

        refused = await client.get("/api/v1/users", headers={"X-API-Key": str(reader["key"])})
        allowed = await client.get("/api/v1/users", headers={"X-API-Key": str(admin["key"])})

        assert refused.status_code == 403
        assert allowed.status_code == 200

    async def test_a_demoted_owner_s_key_loses_what_the_role_lost(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        email = unique_email()
        headers = await auth_headers(client, email)
        await make_admin(session_maker, email)
        key = await create_key(client, headers, scopes=["users:admin"])
        admin = {"X-API-Key": str(key["key"])}
        assert (await client.get("/api/v1/users", headers=admin)).status_code == 200

        me = await client.get("/api/v1/users/me", headers=admin)
        other_email = unique_email()
        other = await auth_headers(client, other_email)
        await make_admin(session_maker, other_email)
        demote = await client.patch(
            f"/api/v1/users/{me.json()['id']}", json={"role": "user"}, headers=other
        )
        assert demote.status_code == 200

        assert (await client.get("/api/v1/users", headers=admin)).status_code == 403

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/api/v1/api-keys", {"name": "more", "scopes": ["items:read"]}),
            ("GET", "/api/v1/api-keys", None),
            ("PATCH", "/api/v1/users/me", {"full_name": "changed"}),
            ("POST", "/api/v1/users/me/password", {"current_password": "x", "new_password": "y"}),
        ],
        ids=["create-key", "list-keys", "profile", "password"],
    )
    async def test_a_key_cannot_manage_the_account(
        self, client: AsyncClient, method: str, path: str, body: dict[str, object] | None
    ) -> None:
        headers = await auth_headers(client)
        key = await create_key(client, headers)

        response = await client.request(
            method, path, json=body, headers={"X-API-Key": str(key["key"])}
        )

        assert response.status_code == 403, response.text
        assert len((await client.get("/api/v1/api-keys", headers=headers)).json()) == 1

    async def test_last_used_is_written_at_most_once_a_minute(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        key = await create_key(client, headers)
        use = {"X-API-Key": str(key["key"])}

        async def last_used() -> datetime | None:
            async with session_maker() as session:
                row = await session.get(ApiKey, uuid.UUID(str(key["id"])))
                assert row is not None
                await session.refresh(row)
                return row.last_used_at

        assert (await client.get("/api/v1/users/me", headers=use)).status_code == 200
        first = await last_used()
        assert (await client.get("/api/v1/users/me", headers=use)).status_code == 200
        second = await last_used()
        # Pretend the last write was long ago: the next use writes again.
        async with session_maker() as session:
            row = await session.get(ApiKey, uuid.UUID(str(key["id"])))
            assert row is not None
            row.last_used_at = datetime.now(UTC) - timedelta(minutes=5)
            await session.commit()
        assert (await client.get("/api/v1/users/me", headers=use)).status_code == 200
        third = await last_used()

        assert first is not None
        assert second == first
        assert third is not None
        assert third > first
        listed = (await client.get("/api/v1/api-keys", headers=headers)).json()
        assert listed[0]["last_used_at"] is not None


class TestRevokeApiKey:
    async def test_a_revoked_key_stops_working_and_leaves_the_list(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        key = await create_key(client, headers)

        revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)
        use = await client.get("/api/v1/users/me", headers={"X-API-Key": str(key["key"])})
        again = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)

        assert revoked.status_code == 204
        assert use.status_code == 401
        assert again.status_code == 404
        assert (await client.get("/api/v1/api-keys", headers=headers)).json() == []

    async def test_creating_and_revoking_a_key_are_audited(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        key = await create_key(client, headers)
        await client.delete(f"/api/v1/api-keys/{key['id']}", headers=headers)

        async with session_maker() as session:
            rows = await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.resource == "api_key", AuditEntry.resource_id == str(key["id"]))
                .order_by(AuditEntry.id)
            )
            entries = [(row.action, row.changes) for row in rows]

        key_id = str(key["prefix"]).partition("_")[2]
        assert [action for action, _ in entries] == ["api_key.create", "api_key.revoke"]
        assert entries[0][1] == {"key_id": key_id, "scopes": ["items:read"]}
        assert str(key["key"]).partition(".")[2] not in str(entries)  # never the secret

    async def test_another_user_s_key_is_not_found(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        key = await create_key(client, owner)

        response = await client.delete(
            f"/api/v1/api-keys/{key['id']}", headers=await auth_headers(client)
        )

        assert response.status_code == 404
        use = await client.get("/api/v1/users/me", headers={"X-API-Key": str(key["key"])})
        assert use.status_code == 200


async def test_rate_limits_count_per_api_key(settings: Settings) -> None:
    # An app of its own with a small limit and an in-process store, so no other test shares it.
    limited = make_settings(
        database_url=settings.database_url,
        rate_limit_default="3/minute",
        rate_limit_auth="100/minute",
    )
    async with serving(create_app(limited)) as client:
        key = await create_key(client, await auth_headers(client))
        use = {"X-API-Key": str(key["key"])}
        with_key = [(await client.get("/api/v1/users/me", headers=use)).status_code for _ in "1234"]
        # A made-up key id is not a bucket of its own: it is charged to the client address.
        made_up = {"X-API-Key": f"{api_keys.PREFIX}_{'0' * api_keys.KEY_ID_LENGTH}.secret"}
        anonymous = [
            (await client.get("/api/v1/users/me", headers=made_up)).status_code for _ in "1234"
        ]

    assert with_key == [200, 200, 200, 429]
    assert anonymous == [401, 401, 401, 429]
