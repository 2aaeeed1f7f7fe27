"""Sessions: login (throttled), refresh-token rotation with reuse detection, logout, and the
checks every authenticated request passes (not revoked, account still active)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.login_throttle import LoginThrottle
from {{ cookiecutter.project_slug }}.core.token_store import TokenStore
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.auth import TokenPair
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.user import UserService

log = get_logger(__name__)

INVALID_TOKEN = "the token is invalid or has expired"  # noqa: S105 - a message


class AuthService:
    def __init__(
        self,
        users: UserService,
        settings: Settings,
        tokens: TokenStore,
        throttle: LoginThrottle,
        audit: AuditLog,
    ) -> None:
        self._users = users
        self._settings = settings
        self._tokens = tokens
        self._throttle = throttle
        self._audit = audit

    async def login(self, email: str, password: str, *, client: str) -> TokenPair:
        """Tokens for valid credentials; a throttled account or client is refused before the
        password is checked."""
        await self._throttle.check(email, client)
        try:
            user = await self._users.authenticate(email, password)
        except AuthenticationError:
            await self._throttle.failed(email, client)
            # The request's transaction rolls back with the 401; the attempt is kept regardless.
            await self._audit.record_alone(
                "auth.login_failed",
                actor=None,
                resource="user",
                changes={"email": email, "client": client},
            )
            raise
        await self._throttle.succeeded(email)
        self._audit.record(
            "auth.login",
            actor=user.id,
            resource="user",
            resource_id=user.id,
            changes={"client": client},
        )
        return await self.start_session(user)

    async def start_session(self, user: User) -> TokenPair:
        """A new token pair whose refresh token starts a family of its own."""
        family = security.new_token_id()
        pair, refresh = self._issue(str(user.id), family)
        await self._tokens.start_family(
            str(user.id), family, refresh.token_id, self._settings.refresh_token_ttl_seconds
        )
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: a new pair for the family's current refresh token. Any other token of the
        family (one already rotated, so possibly stolen) ends the family."""
        claims = self._decode(refresh_token, "refresh")
        assert claims.family is not None  # noqa: S101 - decode_token requires it on refresh
        await self._user(claims)
        pair, successor = self._issue(claims.subject, claims.family)
        rotated = await self._tokens.rotate(
            claims.family,
            claims.token_id,
            successor.token_id,
            self._settings.refresh_token_ttl_seconds,
        )
        if not rotated:
            log.warning(
                "retired refresh token presented; its family is ended",
                user_id=claims.subject,
                family=claims.family,
            )
            raise AuthenticationError("the refresh token is no longer valid; log in again")
        return pair

    async def logout(self, access: security.TokenClaims, refresh_token: str) -> None:
        """Revoke the access token and end the refresh token's family."""
        refresh = self._decode(refresh_token, "refresh")
        if refresh.subject != access.subject or refresh.family is None:
            raise AuthenticationError("the refresh token belongs to another account")
        remaining = (access.expires_at - datetime.now(UTC)).total_seconds()
        await self._tokens.revoke(access.token_id, max(1, int(remaining) + 1))
        await self._tokens.end_family(refresh.family)
        self._audit.record(
            "auth.logout",
            actor=uuid.UUID(access.subject),
            resource="user",
            resource_id=access.subject,
        )

    async def user_from_access_token(self, token: str) -> User:
        """The user an access token names, for callers outside HTTP (the middleware decodes
        requests' tokens once, then `user_from_claims` takes over)."""
        return await self.user_from_claims(self._decode(token, "access"))

    async def user_from_claims(
        self, claims: security.TokenClaims, *, revoked: bool | None = None
    ) -> User:
        """The active user a verified access token names, unless the token was revoked.

        `revoked`: the revocation check's answer when the caller already has it.
        """
        if revoked is None:
            revoked = await self._tokens.is_revoked(claims.token_id)
        if revoked:
            raise AuthenticationError(INVALID_TOKEN, reason="invalid_token")
        return await self._user(claims)

    async def _user(self, claims: security.TokenClaims) -> User:
        try:
            user_id = uuid.UUID(claims.subject)
        except ValueError:
            raise AuthenticationError(INVALID_TOKEN, reason="invalid_token") from None
        return await self._users.get_active(user_id)

    def _decode(self, token: str, kind: security.TokenType) -> security.TokenClaims:
        return security.decode_token(
            token,
            expected=kind,
            secret_key=self._settings.jwt_verification_key,
            algorithm=self._settings.jwt_algorithm,
        )

    def _issue(self, subject: str, family: str) -> tuple[TokenPair, security.TokenClaims]:
        key, algorithm = self._settings.jwt_signing_key, self._settings.jwt_algorithm
        access, _ = security.create_token(
            subject,
            kind="access",
            ttl_seconds=self._settings.access_token_ttl_seconds,
            secret_key=key,
            algorithm=algorithm,
        )
        refresh, refresh_claims = security.create_token(
            subject,
            kind="refresh",
            ttl_seconds=self._settings.refresh_token_ttl_seconds,
            secret_key=key,
            family=family,
            algorithm=algorithm,
        )
        pair = TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self._settings.access_token_ttl_seconds,
        )
        return pair, refresh_claims
