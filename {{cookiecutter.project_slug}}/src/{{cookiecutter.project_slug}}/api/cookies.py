"""Browser mode (AUTH_COOKIE_MODE): the refresh token in a cookie, and the CSRF check.

The refresh cookie is HttpOnly (page scripts cannot read it), Secure, SameSite=Strict and
scoped to /api/v1/auth, so it is sent only to the routes that use it. Cookies are sent by the
browser whoever made the page, so the routes that act on the cookie (refresh, logout) also need
a double-submit token: a random value in a cookie page scripts can read, echoed in the
X-CSRF-Token header, which another site's page can neither read nor set.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, PermissionDeniedError
from {{ cookiecutter.project_slug }}.schemas.auth import TokenPair

REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_COOKIE_PATH = "/api/v1/auth"


def set_session_cookies(response: Response, pair: TokenPair, *, max_age: int) -> TokenPair:
    """Move the refresh token into its cookie, with a fresh CSRF token; the body keeps the
    access token only."""
    assert pair.refresh_token is not None  # noqa: S101 - the service always issues one
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=max_age,
        path=REFRESH_COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        max_age=max_age,
        path="/",
        secure=True,
        httponly=False,  # page scripts read it to echo it in the header
        samesite="strict",
    )
    return pair.model_copy(update={"refresh_token": None})


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")


def check_csrf(request: Request) -> None:
    """403 unless the X-CSRF-Token header equals the CSRF cookie (compared in constant time)."""
    cookie = request.cookies.get(CSRF_COOKIE, "").encode()
    header = request.headers.get(CSRF_HEADER, "").encode()
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        raise PermissionDeniedError(
            f"missing or mismatched CSRF token: send the {CSRF_COOKIE} cookie's value "
            f"in the {CSRF_HEADER} header"
        )


def refresh_cookie(request: Request) -> str:
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise AuthenticationError("no refresh token cookie; log in again")
    return token
