"""Registration, authentication and account use cases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import ClassVar

from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.core.events import Event, EventPublisher
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.token_store import TokenStore
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams
from {{ cookiecutter.project_slug }}.schemas.user import (
    AccountUpdate,
    PasswordChange,
    ProfileUpdate,
    UserCreate,
    UserRead,
)
from {{ cookiecutter.project_slug }}.services.audit import AuditLog

log = get_logger(__name__)

INVALID_CREDENTIALS = "incorrect e-mail or password"


class UserRegistered(Event):
    """A new account exists; follow-ups (the welcome e-mail) hang off this."""

    name: ClassVar[str] = "user.registered"
    aggregate: ClassVar[str] = "user_id"

    user_id: uuid.UUID


class UserService:
    def __init__(
        self,
        uow: UnitOfWork,
        users: UserRepository,
        events: EventPublisher,
        tokens: TokenStore,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._users = users
        self._events = events
        self._tokens = tokens
        self._audit = audit

    async def register(self, data: UserCreate, *, role: str = "user") -> User:
        email = data.email.lower()
        security.check_password_policy(data.password, email=email)
        # Argon2 is deliberately slow; hashing off the event loop keeps other requests moving.
        password_hash = await asyncio.to_thread(security.hash_password, data.password)
        user = User(email=email, password_hash=password_hash, full_name=data.full_name, role=role)
        await self._users.add(user, conflict="a user with this e-mail already exists")
        await self._events.publish(UserRegistered(user_id=user.id, actor_id=user.id))
        self._audit.record(
            "user.create",
            actor=user.id,
            resource="user",
            resource_id=user.id,
            changes={"email": email, "role": role},
        )
        return user

    async def authenticate(self, email: str, password: str) -> User:
        """The same error, after the same work, whether the e-mail or the password is wrong."""
        user = await self._users.get_by_email(email)
        stored_hash = user.password_hash if user is not None else None
        valid = await asyncio.to_thread(security.verify_password, password, stored_hash)
        if user is None or not valid or not user.is_active:
            raise AuthenticationError(INVALID_CREDENTIALS, reason="invalid_credentials")
        if security.password_needs_rehash(user.password_hash):
            user.password_hash = await asyncio.to_thread(security.hash_password, password)
        return user

    async def get_active(self, user_id: uuid.UUID) -> User:
        user = await self._users.get(user_id)
        if user is None or not user.is_active:
            raise AuthenticationError(
                "the account does not exist or is disabled", reason="inactive_account"
            )
        return user

    async def update_profile(self, user: User, data: ProfileUpdate) -> User:
        """Name, phone and e-mail; changing the e-mail re-checks the current password."""
        changes = data.model_dump(exclude_unset=True)
        if "full_name" in changes:
            user.full_name = data.full_name
        if "phone" in changes:
            user.phone = data.phone
        if data.email is not None and data.email.lower() != user.email:
            await self._check_password(user, data.current_password)
            email = data.email.lower()
            if await self._users.get_by_email(email) is not None:
                raise ConflictError("a user with this e-mail already exists")
            user.email = email
        await self._users.flush_unique(conflict="a user with this e-mail already exists")
        self._audit.record(
            "user.update",
            actor=user.id,
            resource="user",
            resource_id=user.id,
            changes=data.model_dump(exclude_unset=True),
        )
        return user

    async def change_password(self, user: User, data: PasswordChange) -> None:
        """A new password (the current one required); every refresh token of the user ends."""
        await self._check_password(user, data.current_password)
        security.check_password_policy(data.new_password, email=user.email)
        user.password_hash = await asyncio.to_thread(security.hash_password, data.new_password)
        await self._users.flush()
        await self._tokens.end_user_families(str(user.id))
        self._audit.record(
            "user.password_change",
            actor=user.id,
            resource="user",
            resource_id=user.id,
            changes={"password": "changed"},
        )

    async def update_account(self, actor: User, user_id: uuid.UUID, data: AccountUpdate) -> User:
        """An admin sets the role or the active flag; a deactivated account's sessions end."""
        user = await self.get(user_id)
        if user.id == actor.id and (data.is_active is False or data.role not in (None, user.role)):
            raise PermissionDeniedError("admins cannot demote or deactivate themselves")
        if data.role is not None:
            user.role = data.role
        if data.is_active is not None:
            user.is_active = data.is_active
        await self._users.flush()
        await self._users.refresh(user)
        if data.is_active is False:
            # Access tokens already stop at the next request (the account is looked up each
            # time); ending the families keeps them dead if the account is re-enabled.
            await self._tokens.end_user_families(str(user.id))
        self._audit.record(
            "user.update",
            actor=actor.id,
            resource="user",
            resource_id=user.id,
            changes=data.model_dump(exclude_unset=True),
        )
        log.info(
            "account changed",
            actor_id=str(actor.id),
            user_id=str(user.id),
            role=user.role,
            is_active=user.is_active,
        )
        return user

    async def _check_password(self, user: User, password: str | None) -> None:
        if password is None:
            raise ValidationFailedError("`current_password` is required for this change")
        valid = await asyncio.to_thread(security.verify_password, password, user.password_hash)
        if not valid:
            raise PermissionDeniedError("the current password is incorrect")

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self._users.get(user_id)
        if user is None:
            raise NotFoundError(f"user {user_id} does not exist")
        return user

    async def list_page(self, params: PageParams) -> Page[UserRead]:
        users, total = await self._users.list_page(offset=params.offset, limit=params.page_size)
        return Page[UserRead].build(
            [UserRead.model_validate(user) for user in users], total=total, params=params
        )

    async def mark_welcomed(self, user_id: uuid.UUID) -> bool:
        """Record the welcome e-mail; `False` when it was already sent (a redelivered task)."""
        user = await self.get(user_id)
        if user.welcome_email_sent_at is not None:
            return False
        user.welcome_email_sent_at = datetime.now(UTC)
        await self._users.flush()
        return True
