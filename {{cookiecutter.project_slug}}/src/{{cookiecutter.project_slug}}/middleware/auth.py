"""Record who is calling, once per request, for logs, rate limits and the route dependencies.

This authenticates and nothing more: a missing or bad token leaves the request anonymous, and the
routes that need a user refuse it (`CurrentUser` in `api/deps.py`). The token is decoded here
only; the dependency reads the claims from the request state instead of decoding again.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError

# Bigger headers are not tokens this service issued; refusing them bounds the decoding work.
MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a valid access token names."""

    claims: security.TokenClaims

    @property
    def user_id(self) -> str:
        return self.claims.subject

    @property
    def rate_limit_key(self) -> str:
        return f"user:{self.claims.subject}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request presented: a principal, or why there is none."""

    principal: Principal | None
    token_presented: bool


ANONYMOUS = Credentials(principal=None, token_presented=False)
INVALID = Credentials(principal=None, token_presented=True)


def bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


def credentials_of(scope: Scope) -> Credentials:
    """The credentials `AuthPrincipalMiddleware` recorded for this request."""
    credentials = scope.get("state", {}).get("credentials", ANONYMOUS)
    assert isinstance(credentials, Credentials)  # noqa: S101 - only this module writes it
    return credentials


class AuthPrincipalMiddleware:
    def __init__(self, app: ASGIApp, *, secret_key: str) -> None:
        self.app = app
        self.secret_key = secret_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            credentials = self._authenticate(bearer_token(scope))
            state = scope.setdefault("state", {})
            state["credentials"] = credentials
            if credentials.principal is not None:
                state["principal"] = credentials.principal
                state["user_id"] = credentials.principal.user_id
                structlog.contextvars.bind_contextvars(user_id=credentials.principal.user_id)
        await self.app(scope, receive, send)

    def _authenticate(self, token: bytes | None) -> Credentials:
        if token is None:
            return ANONYMOUS
        if len(token) > MAX_TOKEN_BYTES:
            return INVALID
        try:
            claims = security.decode_token(
                token.decode("ascii"), expected="access", secret_key=self.secret_key
            )
        except (AuthenticationError, UnicodeDecodeError):
            return INVALID
        return Credentials(principal=Principal(claims), token_presented=True)
