"""Browser mode (AUTH_COOKIE_MODE): the refresh token lives in an HttpOnly cookie, and refresh
and logout need the double-submit CSRF header; without it they are refused with no effect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from tests.conftest import make_app, make_settings
from tests.factories import PASSWORD, bearer, register, unique_email

PROBLEM = "application/problem+json"


@pytest.fixture
async def browser(settings: Settings, session_maker: SessionMaker) -> AsyncIterator[AsyncClient]:
    """A client over HTTPS (Secure cookies are sent back) to an app in browser mode."""
    cookie_settings = make_settings(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        auth_cookie_mode=True,
    )
    app = make_app(cookie_settings, session_maker)
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="https://test") as client,
    ):
        yield client


def set_cookies(response: Response) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            cookies[name] = cookie
    return cookies


async def browser_login(client: AsyncClient) -> tuple[str, Response]:
    email = unique_email()
    await register(client, email)
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"]), response


def csrf(client: AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["csrf_token"]}


class TestLogin:
    async def test_the_refresh_token_is_an_http_only_strict_cookie(
        self, browser: AsyncClient
    ) -> None:
        _, response = await browser_login(browser)

        assert response.json()["refresh_token"] is None
        cookies = set_cookies(response)
        refresh = cookies["refresh_token"]["refresh_token"]
        assert refresh.value.count(".") == 2  # a JWT
        assert refresh["httponly"] is True
        assert refresh["secure"] is True
        assert refresh["samesite"].lower() == "strict"
        assert refresh["path"] == "/api/v1/auth"
        token = cookies["csrf_token"]["csrf_token"]
        assert len(token.value) >= 32
        assert not token["httponly"]
        assert token["secure"] is True
        assert token["samesite"].lower() == "strict"


class TestRefresh:
    async def test_with_the_csrf_header_the_cookie_is_rotated(self, browser: AsyncClient) -> None:
        await browser_login(browser)
        first = browser.cookies["refresh_token"]

        response = await browser.post("/api/v1/auth/refresh", headers=csrf(browser))

        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] is None
        assert browser.cookies["refresh_token"] != first
        assert "refresh_token" in set_cookies(response)

    @pytest.mark.parametrize(
        "header", [None, "", "not-the-cookie"], ids=["missing", "empty", "mismatched"]
    )
    async def test_without_a_matching_csrf_header_it_is_a_403_without_effect(
        self, browser: AsyncClient, header: str | None
    ) -> None:
        await browser_login(browser)
        before = browser.cookies["refresh_token"]
        headers = {} if header is None else {"X-CSRF-Token": header}

        refused = await browser.post("/api/v1/auth/refresh", headers=headers)

        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
        assert "set-cookie" not in refused.headers
        # The token was not rotated: it still refreshes once the header is right.
        assert browser.cookies["refresh_token"] == before
        assert (
            await browser.post("/api/v1/auth/refresh", headers=csrf(browser))
        ).status_code == 200

    async def test_a_csrf_header_without_its_cookie_is_refused(self, browser: AsyncClient) -> None:
        await browser_login(browser)
        token = browser.cookies["csrf_token"]
        browser.cookies.delete("csrf_token")

        refused = await browser.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": token})

        assert refused.status_code == 403

    async def test_without_the_refresh_cookie_it_is_a_401(self, browser: AsyncClient) -> None:
        await browser_login(browser)
        browser.cookies.delete("refresh_token")

        response = await browser.post("/api/v1/auth/refresh", headers=csrf(browser))

        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM


class TestLogout:
    async def test_without_the_csrf_header_it_is_a_403_without_effect(
        self, browser: AsyncClient
    ) -> None:
        access, _ = await browser_login(browser)

        refused = await browser.post("/api/v1/auth/logout", headers=bearer(access))

        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
        assert (await browser.get("/api/v1/users/me", headers=bearer(access))).status_code == 200
        assert (
            await browser.post("/api/v1/auth/refresh", headers=csrf(browser))
        ).status_code == 200

    async def test_with_the_csrf_header_it_ends_the_session_and_clears_the_cookies(
        self, browser: AsyncClient
    ) -> None:
        access, _ = await browser_login(browser)
        refresh = browser.cookies["refresh_token"]
        headers = {**bearer(access), **csrf(browser)}

        response = await browser.post("/api/v1/auth/logout", headers=headers)

        assert response.status_code == 204, response.text
        assert "refresh_token" not in browser.cookies
        assert (await browser.get("/api/v1/users/me", headers=bearer(access))).status_code == 401
        browser.cookies.set("refresh_token", refresh, domain="test.local", path="/api/v1/auth")
        browser.cookies.set("csrf_token", "t" * 43, domain="test.local")
        reused = await browser.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": "t" * 43})
        assert reused.status_code == 401


async def test_outside_browser_mode_the_body_is_required(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh")

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
