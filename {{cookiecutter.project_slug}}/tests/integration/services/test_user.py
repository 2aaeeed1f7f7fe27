"""Account use cases against the real database, inside the test's rolled-back transaction."""

from __future__ import annotations

import uuid

import pytest

from {{ cookiecutter.project_slug }}.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.core.events import EventPublisher
from {{ cookiecutter.project_slug }}.core.token_store import InMemoryTokenStore
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate
from {{ cookiecutter.project_slug }}.services.outbox import OutboxPublisher
from {{ cookiecutter.project_slug }}.services.user import (
    INVALID_CREDENTIALS,
    UserRegistered,
    UserService,
)
from tests.factories import PASSWORD, audit_log, recorded_events, unique_email


def service(uow: UnitOfWork, events: EventPublisher | None = None) -> UserService:
    return UserService(
        uow,
        UserRepository(uow.session),
        events or OutboxPublisher(uow, lambda: None),
        InMemoryTokenStore(),
        audit_log(uow),
    )


class TestRegister:
    async def test_stores_a_hash_and_a_lower_cased_email(self, uow: UnitOfWork) -> None:
        email = unique_email()
        user = await service(uow).register(UserCreate(email=email.upper(), password=PASSWORD))
        assert user.email == email
        assert user.role == "user"
        assert PASSWORD not in user.password_hash

    async def test_same_email_in_another_case_is_a_conflict(self, uow: UnitOfWork) -> None:
        email = unique_email()
        users = service(uow)
        await users.register(UserCreate(email=email, password=PASSWORD))
        with pytest.raises(ConflictError):
            await users.register(UserCreate(email=email.upper(), password=PASSWORD))
        # The conflict is contained: the transaction still works.
        assert await UserRepository(uow.session).get_by_email(email) is not None

    async def test_weak_password_is_refused(self, uow: UnitOfWork) -> None:
        with pytest.raises(ValidationFailedError):
            await service(uow).register(UserCreate(email=unique_email(), password="password"))

    async def test_records_the_event_with_the_user_and_kicks_the_relay_after_commit(
        self, uow: UnitOfWork
    ) -> None:
        kicks: list[str] = []
        publisher = OutboxPublisher(uow, lambda: kicks.append("kick"))
        user = await service(uow, publisher).register(
            UserCreate(email=unique_email(), password=PASSWORD)
        )

        recorded = await recorded_events(uow.session, UserRegistered)
        assert [event.actor_id for event in recorded if event.user_id == user.id] == [user.id]
        assert kicks == []
        await uow.commit()
        assert kicks == ["kick"]


class TestAuthenticate:
    async def test_right_password_returns_the_user(self, uow: UnitOfWork) -> None:
        email = unique_email()
        users = service(uow)
        registered = await users.register(UserCreate(email=email, password=PASSWORD))
        assert (await users.authenticate(email, PASSWORD)).id == registered.id

    async def test_wrong_password_unknown_email_and_disabled_account_look_the_same(
        self, uow: UnitOfWork
    ) -> None:
        users = service(uow)
        email, disabled_email = unique_email(), unique_email()
        await users.register(UserCreate(email=email, password=PASSWORD))
        disabled = await users.register(UserCreate(email=disabled_email, password=PASSWORD))
        disabled.is_active = False

        messages = []
        for attempt_email, password in [
            (email, PASSWORD + "-wrong"),
            (unique_email(), PASSWORD),
            (disabled_email, PASSWORD),
        ]:
            with pytest.raises(AuthenticationError) as caught:
                await users.authenticate(attempt_email, password)
            messages.append(caught.value.detail)
        assert messages == [INVALID_CREDENTIALS] * 3


class TestWelcome:
    async def test_is_recorded_once(self, uow: UnitOfWork) -> None:
        users = service(uow)
        user = await users.register(UserCreate(email=unique_email(), password=PASSWORD))
        assert await users.mark_welcomed(user.id) is True
        assert user.welcome_email_sent_at is not None
        # A redelivered task finds it done.
        assert await users.mark_welcomed(user.id) is False

    async def test_unknown_user_is_not_found(self, uow: UnitOfWork) -> None:
        with pytest.raises(NotFoundError):
            await service(uow).get(uuid.uuid4())
