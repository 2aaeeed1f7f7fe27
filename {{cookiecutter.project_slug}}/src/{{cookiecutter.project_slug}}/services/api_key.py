"""API keys: issue (the secret returned once), list, revoke, and authenticate a presented key.

A key acts for its owner with the permissions both its scopes and the owner's current role
grant: a demoted owner's keys lose what the role lost, and a key never gains what it was not
given. Revoked, expired and unknown keys, and wrong secrets, are refused alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from {{ cookiecutter.project_slug }}.core import api_keys
from {{ cookiecutter.project_slug }}.core.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.permissions import Permission, permissions_of
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.api_key import ApiKey
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.api_key import ApiKeyRepository
from {{ cookiecutter.project_slug }}.schemas.api_key import ApiKeyCreate
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.user import UserService

log = get_logger(__name__)

INVALID_KEY = "the API key is invalid, revoked or expired"
# `last_used_at` is a hint for the owner, not an audit trail: one write a minute per key at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_KNOWN_SCOPES = frozenset(permission.value for permission in Permission)


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """Who a valid key acts for, and what it may do."""

    user: User
    api_key_id: uuid.UUID
    permissions: frozenset[Permission]


class ApiKeyService:
    def __init__(
        self,
        uow: UnitOfWork,
        keys: ApiKeyRepository,
        users: UserService,
        pepper: bytes,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._users = users
        self._pepper = pepper
        self._audit = audit

    async def create(self, owner: User, data: ApiKeyCreate) -> tuple[ApiKey, str]:
        """A new key and its full text, which is not kept."""
        beyond = sorted(set(data.scopes) - permissions_of(owner.role))
        if beyond:
            names = ", ".join(permission.value for permission in beyond)
            raise PermissionDeniedError(f"a key cannot grant what its owner lacks: {names}")
        if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
            message = "expires_at must be in the future"
            raise ValidationFailedError(
                message, errors=[{"field": "expires_at", "message": message, "type": "past"}]
            )
        new = api_keys.generate(self._pepper)
        api_key = ApiKey(
            key_id=new.key_id,
            user_id=owner.id,
            name=data.name,
            secret_hash=new.secret_hash,
            scopes=sorted({scope.value for scope in data.scopes}),
            expires_at=data.expires_at,
        )
        await self._keys.add(api_key, conflict="key id collision; try again")
        await self._keys.refresh(api_key)
        log.info("api key created", user_id=str(owner.id), key_id=new.key_id)
        self._audit.record(
            "api_key.create",
            actor=owner.id,
            resource="api_key",
            resource_id=api_key.id,
            changes={"key_id": new.key_id, "scopes": sorted(data.scopes)},
        )
        return api_key, new.key

    async def list_active(self, owner: User) -> Sequence[ApiKey]:
        return await self._keys.list_active(owner.id)

    async def revoke(self, owner: User, api_key_id: uuid.UUID) -> None:
        api_key = await self._keys.get_owned(api_key_id, owner.id)
        if api_key is None:
            raise NotFoundError(f"API key {api_key_id} does not exist")
        api_key.revoked_at = datetime.now(UTC)
        await self._keys.flush()
        log.info("api key revoked", user_id=str(owner.id), key_id=api_key.key_id)
        self._audit.record(
            "api_key.revoke", actor=owner.id, resource="api_key", resource_id=api_key.id
        )

    async def authenticate(self, presented: api_keys.PresentedKey) -> KeyGrant:
        """The owner and effective permissions of a valid key; `AuthenticationError` otherwise."""
        api_key = await self._keys.get_by_key_id(presented.key_id)
        now = datetime.now(UTC)
        if (
            api_key is None
            or not api_keys.secret_matches(presented, api_key.secret_hash, self._pepper)
            or api_key.revoked_at is not None
            or (api_key.expires_at is not None and _utc(api_key.expires_at) <= now)
        ):
            raise AuthenticationError(INVALID_KEY, reason="invalid_api_key")
        user = await self._users.get_active(api_key.user_id)
        await self._keys.touch(api_key.id, now=now, not_since=now - LAST_USED_RESOLUTION)
        # A scope no longer in the code (a permission renamed since) grants nothing.
        scopes = {Permission(scope) for scope in api_key.scopes if scope in _KNOWN_SCOPES}
        return KeyGrant(user, api_key.id, frozenset(scopes) & permissions_of(user.role))


def _utc(value: datetime) -> datetime:
    # SQLite returns timestamps without an offset; they were stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
