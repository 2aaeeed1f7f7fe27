"""The unit of work: all or nothing, and follow-ups only for what was committed."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    create_session_maker,
    unit_of_work,
    without_transactions,
)
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


# Two statements in one transaction share its id; on their own, each has an id of its own.
TRANSACTION_ID = text("SELECT txid_current()")


async def second_statement_has_its_own_transaction(maker: SessionMaker) -> bool:
    async with unit_of_work(maker) as uow:
        first = (await uow.session.execute(TRANSACTION_ID)).scalar_one()
        second = (await uow.session.execute(TRANSACTION_ID)).scalar_one()
        return bool(first != second)


class TestWithoutTransactions:
    async def test_reads_run_statement_by_statement(self, engine: AsyncEngine) -> None:
        maker = create_session_maker(engine)

        assert await second_statement_has_its_own_transaction(without_transactions(maker))
        assert not await second_statement_has_its_own_transaction(maker)

    async def test_the_mode_leaves_the_pooled_connection_as_it_was(
        self, engine: AsyncEngine
    ) -> None:
        maker = create_session_maker(engine)
        await second_statement_has_its_own_transaction(without_transactions(maker))

        # The pool holds two connections; both come back transactional.
        assert not await second_statement_has_its_own_transaction(maker)
        assert not await second_statement_has_its_own_transaction(maker)

    async def test_a_write_commits_at_once(self, engine: AsyncEngine) -> None:
        maker = create_session_maker(engine)
        email = unique_email()

        async def write_then_fail() -> None:
            async with unit_of_work(without_transactions(maker)) as uow:
                await UserRepository(uow.session).add(User(email=email, password_hash="x"))
                raise RuntimeError("after the write")

        with pytest.raises(RuntimeError):
            await write_then_fail()

        async with unit_of_work(maker) as uow:
            saved = await UserRepository(uow.session).get_by_email(email)
            assert saved is not None
            await uow.session.delete(saved)  # no outer transaction here to roll it back

    def test_a_maker_bound_to_a_connection_keeps_its_transaction(
        self, session_maker: SessionMaker
    ) -> None:
        assert without_transactions(session_maker) is session_maker

    def test_one_maker_is_derived_once(self, engine: AsyncEngine) -> None:
        maker = create_session_maker(engine)

        assert without_transactions(maker) is without_transactions(maker)
