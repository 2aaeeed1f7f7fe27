"""Record who is calling, once per request, for logs, rate limits and the route dependencies.

This authenticates and nothing more: a missing or bad token leaves the request anonymous, and the
routes that need a user refuse it (`CurrentUser` in `api/deps.py`). The token is decoded here
only; the dependency reads the claims from the request state instead of decoding again.

An API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) is only parsed here: its id must
be one this service issued (checked without the database), so rate limits can count per key;
its secret, revocation and expiry are checked by `CurrentUser`, in the request's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core import api_keys, security
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError
from {{ cookiecutter.project_slug }}.core.jwt_keys import ALGORITHM

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
class ApiKeyPrincipal:
    """The caller a well-formed API key names; its secret is checked by `CurrentUser`."""

    key: api_keys.PresentedKey

    @property
    def rate_limit_key(self) -> str:
        return f"key:{self.key.key_id}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request presented: a principal, or why there is none."""

    principal: Principal | None
    token_presented: bool
    api_key: ApiKeyPrincipal | None = None


ANONYMOUS = Credentials(principal=None, token_presented=False)
INVALID = Credentials(principal=None, token_presented=True)


def bearer_token(scope: Scope) -> bytes | None:
    """The bearer credential, else the `X-API-Key` header; `Authorization` wins when both come."""
    api_key: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
        if name == b"x-api-key":
            api_key = value.strip()
    return api_key


def credentials_of(scope: Scope) -> Credentials:
    """The credentials `AuthPrincipalMiddleware` recorded for this request."""
    credentials = scope.get("state", {}).get("credentials", ANONYMOUS)
    assert isinstance(credentials, Credentials)  # noqa: S101 - only this module writes it
    return credentials


class AuthPrincipalMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        api_key_pepper: bytes,
        algorithm: str = ALGORITHM,
    ) -> None:
        self.app = app
        self.secret_key = secret_key  # the verification key: HS256 secret or RS256 public key
        self.api_key_pepper = api_key_pepper
        self.algorithm = algorithm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            credentials = self._authenticate(bearer_token(scope))
            state = scope.setdefault("state", {})
            state["credentials"] = credentials
            if credentials.principal is not None:
                state["principal"] = credentials.principal
                state["user_id"] = credentials.principal.user_id
                structlog.contextvars.bind_contextvars(user_id=credentials.principal.user_id)
            elif credentials.api_key is not None:
                state["principal"] = credentials.api_key
                structlog.contextvars.bind_contextvars(key_id=credentials.api_key.key.key_id)
            else:
                # Servers that share one state mapping between requests must not leak a caller.
                state.pop("principal", None)
                state.pop("user_id", None)
        await self.app(scope, receive, send)

    def _authenticate(self, token: bytes | None) -> Credentials:
        if token is None:
            return ANONYMOUS
        if len(token) > MAX_TOKEN_BYTES:
            return INVALID
        try:
            text = token.decode("ascii")
            if api_keys.looks_like_key(text):
                presented = api_keys.parse(text, self.api_key_pepper)
                if presented is None:
                    return INVALID
                return Credentials(None, token_presented=True, api_key=ApiKeyPrincipal(presented))
            claims = security.decode_token(
                text, expected="access", secret_key=self.secret_key, algorithm=self.algorithm
            )
        except (AuthenticationError, UnicodeDecodeError):
            return INVALID
        return Credentials(principal=Principal(claims), token_presented=True)
