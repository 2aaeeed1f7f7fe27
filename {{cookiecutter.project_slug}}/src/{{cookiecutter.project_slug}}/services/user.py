"""Registration, authentication and account use cases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

from {{ cookiecutter.project_slug }}.core import security
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, NotFoundError
from {{ cookiecutter.project_slug }}.core.events import Event, EventPublisher
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate, UserRead

INVALID_CREDENTIALS = "incorrect e-mail or password"


class UserRegistered(Event):
    """A new account exists; follow-ups (the welcome e-mail) hang off this."""

    user_id: uuid.UUID


class UserService:
    def __init__(self, uow: UnitOfWork, users: UserRepository, events: EventPublisher) -> None:
        self._uow = uow
        self._users = users
        self._events = events

    async def register(self, data: UserCreate, *, role: str = "user") -> User:
        email = data.email.lower()
        security.check_password_policy(data.password, email=email)
        # Argon2 is deliberately slow; hashing off the event loop keeps other requests moving.
        password_hash = await asyncio.to_thread(security.hash_password, data.password)
        user = User(email=email, password_hash=password_hash, full_name=data.full_name, role=role)
        await self._users.add(user, conflict="a user with this e-mail already exists")
        self._uow.after_commit(partial(self._events.publish, UserRegistered(user_id=user.id)))
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
