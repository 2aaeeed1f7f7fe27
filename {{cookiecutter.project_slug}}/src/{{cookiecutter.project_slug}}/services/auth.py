"""Token issuing and verification on top of the user service."""

from __future__ import annotations

import uuid

from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.auth import TokenPair
from {{ cookiecutter.project_slug }}.services.user import UserService


class AuthService:
    def __init__(self, users: UserService, settings: Settings) -> None:
        self._users = users
        self._settings = settings

    async def login(self, email: str, password: str) -> TokenPair:
        user = await self._users.authenticate(email, password)
        return self.issue_tokens(user)

    def issue_tokens(self, user: User) -> TokenPair:
        key = self._settings.signing_key
        access, _ = security.create_token(
            str(user.id),
            kind="access",
            ttl_seconds=self._settings.access_token_ttl_seconds,
            secret_key=key,
        )
        refresh, _ = security.create_token(
            str(user.id),
            kind="refresh",
            ttl_seconds=self._settings.refresh_token_ttl_seconds,
            secret_key=key,
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._settings.access_token_ttl_seconds,
        )

    async def user_from_access_token(self, token: str) -> User:
        claims = security.decode_token(
            token, expected="access", secret_key=self._settings.signing_key
        )
        return await self.user_from_claims(claims)

    async def user_from_claims(self, claims: security.TokenClaims) -> User:
        """The active user a verified access token names."""
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError:
            raise AuthenticationError(
                "the token is invalid or has expired", reason="invalid_token"
            ) from None
        return await self._users.get_active(user_id)
