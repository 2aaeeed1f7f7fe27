"""Feature flags through the API: the admin routes, `require_flag` on a real route, and the
process's cache dropped when an admin's change commits."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, Depends, FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.api.flags import require_flag
from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models.feature_flag import FeatureFlag
from tests.conftest import make_settings, serving
from tests.factories import auth_headers, bearer, login, register, unique_email
from tests.integration.api.v1.test_users import make_admin

BETA = "/api/v1/beta-report"

beta = APIRouter(prefix="/api/v1")


@beta.get("/beta-report", dependencies=[Depends(require_flag("beta-report"))])
async def beta_report() -> dict[str, str]:
    return {"report": "ready"}


@pytest.fixture
async def flag_client(
    settings: Settings, session_maker: SessionMaker
) -> AsyncIterator[AsyncClient]:
    """The real app plus a route behind a flag; a cache long enough that only an invalidation
    (never expiry) can explain a change being seen."""

    @asynccontextmanager
    async def test_container(settings: Settings) -> AsyncIterator[Container]:
        async with build_container(settings) as container:
            yield dataclasses.replace(
                container, session_maker=session_maker, kick_relay=lambda: None
            )

    long_cache = make_settings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        feature_flag_cache_ttl_seconds=3600,
    )
    app: FastAPI = create_app(long_cache, container_factory=test_container)
    app.include_router(beta)
    async with serving(app) as client:
        yield client


async def admin(client: AsyncClient, session_maker: SessionMaker) -> dict[str, str]:
    email = unique_email()
    await register(client, email)
    await make_admin(session_maker, email)
    return bearer((await login(client, email))["access_token"])


async def member(client: AsyncClient) -> tuple[str, dict[str, str]]:
    headers = await auth_headers(client)
    me = await client.get("/api/v1/users/me", headers=headers)
    return me.json()["id"], headers


async def set_flag(client: AsyncClient, headers: dict[str, str], **fields: object) -> None:
    response = await client.put("/api/v1/feature-flags/beta-report", json=fields, headers=headers)
    assert response.status_code == 200, response.text


class TestAdminRoutes:
    async def test_creates_changes_and_lists_a_flag(
        self, flag_client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin(flag_client, session_maker)
        user_id, _ = await member(flag_client)

        created = await flag_client.put(
            "/api/v1/feature-flags/beta-report",
            json={"description": "the new report", "rollout_percentage": 12.5},
            headers=headers,
        )
        changed = await flag_client.put(
            "/api/v1/feature-flags/beta-report",
            json={"enabled": True, "allowed_user_ids": [user_id, user_id]},
            headers=headers,
        )
        listing = await flag_client.get("/api/v1/feature-flags", headers=headers)

        assert created.status_code == 200
        assert created.json()["enabled"] is False
        body = changed.json()
        assert (body["enabled"], body["rollout_percentage"]) == (True, 12.5)
        assert body["description"] == "the new report"
        assert body["allowed_user_ids"] == [user_id]
        assert [flag["name"] for flag in listing.json()] == ["beta-report"]

    async def test_members_get_403(self, flag_client: AsyncClient) -> None:
        _, headers = await member(flag_client)

        listing = await flag_client.get("/api/v1/feature-flags", headers=headers)
        change = await flag_client.put(
            "/api/v1/feature-flags/x", json={"enabled": True}, headers=headers
        )

        assert (listing.status_code, change.status_code) == (403, 403)

    @pytest.mark.parametrize(
        ("name", "body"),
        [
            ("Bad Name", {"enabled": True}),
            ("ok", {"rollout_percentage": 100.5}),
            ("ok", {"enabled": None}),
            ("ok", {"allowed_user_ids": ["not-a-uuid"]}),
            ("ok", {"colour": "red"}),
        ],
    )
    async def test_invalid_changes_are_422(
        self,
        flag_client: AsyncClient,
        session_maker: SessionMaker,
        name: str,
        body: dict[str, object],
    ) -> None:
        headers = await admin(flag_client, session_maker)

        response = await flag_client.put(
            f"/api/v1/feature-flags/{name}", json=body, headers=headers
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


class TestRequireFlag:
    async def test_an_unknown_flag_hides_the_route_like_a_missing_one(
        self, flag_client: AsyncClient
    ) -> None:
        _, headers = await member(flag_client)

        hidden = await flag_client.get(BETA, headers=headers)
        missing = await flag_client.get("/api/v1/no-such-report", headers=headers)

        assert hidden.status_code == missing.status_code == 404
        assert hidden.headers["content-type"] == "application/problem+json"
        assert hidden.json()["type"] == missing.json()["type"]
        assert hidden.json()["detail"] == f"no route matches GET {BETA}"

    async def test_targeting_and_the_global_switch(
        self, flag_client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin(flag_client, session_maker)
        targeted_id, targeted = await member(flag_client)
        _, other = await member(flag_client)

        await set_flag(flag_client, headers, enabled=True, allowed_user_ids=[targeted_id])
        targeted_on = await flag_client.get(BETA, headers=targeted)
        other_off = await flag_client.get(BETA, headers=other)
        anonymous_off = await flag_client.get(BETA)
        await set_flag(flag_client, headers, rollout_percentage=100)
        everyone_on = [await flag_client.get(BETA, headers=h) for h in (targeted, other, {})]
        await set_flag(flag_client, headers, enabled=False)
        switched_off = [await flag_client.get(BETA, headers=h) for h in (targeted, other)]

        assert targeted_on.status_code == 200
        assert targeted_on.json() == {"report": "ready"}
        assert (other_off.status_code, anonymous_off.status_code) == (404, 404)
        assert [response.status_code for response in everyone_on] == [200, 200, 200]
        assert [response.status_code for response in switched_off] == [404, 404]

    async def test_the_cache_serves_until_a_change_through_the_api_commits(
        self, flag_client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin(flag_client, session_maker)
        await set_flag(flag_client, headers, enabled=False, rollout_percentage=100)
        assert (await flag_client.get(BETA)).status_code == 404  # now cached for an hour

        # As another process would: straight to the database, no invalidation here.
        async with session_maker() as session:
            await session.execute(update(FeatureFlag).values(enabled=True))
            await session.commit()
        stale = await flag_client.get(BETA)
        await set_flag(flag_client, headers, description="touched")
        fresh = await flag_client.get(BETA)

        assert stale.status_code == 404
        assert fresh.status_code == 200

    async def test_changes_are_audited(
        self, flag_client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await admin(flag_client, session_maker)
        await set_flag(flag_client, headers, enabled=True)

        log = await flag_client.get("/api/v1/audit-log", params={"limit": 1}, headers=headers)

        [entry] = log.json()["items"]
        assert (entry["action"], entry["resource_id"]) == ("feature_flag.update", "beta-report")
        assert entry["changes"] == {"enabled": True}
