"""The unit of work: all or nothing, and follow-ups only for what was committed."""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.db.session import SessionMaker, unit_of_work
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from tests.factories import unique_email


class FailedWorkError(Exception):
    pass


def new_user() -> User:
    return User(email=unique_email(), password_hash="not-a-real-hash")


async def find(session_maker: SessionMaker, email: str) -> User | None:
    async with session_maker() as session:
        return await UserRepository(session).get_by_email(email)


async def test_success_commits_then_runs_follow_ups(session_maker: SessionMaker) -> None:
    user = new_user()
    ran: list[str] = []
    async with unit_of_work(session_maker) as uow:
        await UserRepository(uow.session).add(user)
        uow.after_commit(lambda: ran.append("first"))
        uow.after_commit(lambda: ran.append("second"))
        assert ran == [], "follow-ups must wait for the commit"

    assert ran == ["first", "second"]
    assert await find(session_maker, user.email) is not None


async def test_error_rolls_back_and_drops_follow_ups(session_maker: SessionMaker) -> None:
    user = new_user()
    ran: list[str] = []

    async def failing_work() -> None:
        async with unit_of_work(session_maker) as uow:
            await UserRepository(uow.session).add(user)
            uow.after_commit(lambda: ran.append("enqueue"))
            raise FailedWorkError

    with pytest.raises(FailedWorkError):
        await failing_work()

    assert ran == []
    assert await find(session_maker, user.email) is None


async def test_failing_follow_up_neither_fails_the_work_nor_skips_the_rest(
    session_maker: SessionMaker,
) -> None:
    user = new_user()
    ran: list[str] = []

    def broken() -> None:
        raise ConnectionError("broker down")

    async with unit_of_work(session_maker) as uow:
        await UserRepository(uow.session).add(user)
        uow.after_commit(broken)
        uow.after_commit(lambda: ran.append("after the broken one"))

    assert ran == ["after the broken one"]
    assert await find(session_maker, user.email) is not None


async def test_explicit_rollback_discards_follow_ups(session_maker: SessionMaker) -> None:
    ran: list[str] = []
    async with unit_of_work(session_maker) as uow:
        uow.after_commit(lambda: ran.append("enqueue"))
        await uow.rollback()
    assert ran == []
