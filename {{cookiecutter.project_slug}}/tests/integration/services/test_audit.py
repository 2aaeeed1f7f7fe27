"""The audit log against real PostgreSQL: written with the change or not at all, secrets masked,
append-only in the database, a hash chain that never forks and that finds tampering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.logging import bind_context
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    create_engine,
    create_session_maker,
    unit_of_work,
)
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.audit import GENESIS_HASH, MASKED
from tests.conftest import make_settings
from tests.factories import audit_log, unique_email
from tests.processes import fresh_database
from tests.services import ServiceUrls


@pytest.fixture(scope="module")
async def audit_engine(service_urls: ServiceUrls) -> AsyncIterator[AsyncEngine]:
    """A database of this module's own: the chain is the whole table, and other tests (apps
    that commit logins for real) would add entries to a shared one."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        engine = create_engine(url, pool_size=2)
        yield engine
        await engine.dispose()


@pytest.fixture
async def connection(audit_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One outer transaction per test, rolled back at the end, as everywhere else."""
    async with audit_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


async def entries(session_maker: SessionMaker) -> Sequence[AuditEntry]:
    async with session_maker() as session:
        return (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()


class TestRecord:
    async def test_entries_are_written_when_the_work_commits_and_chained(
        self, session_maker: SessionMaker
    ) -> None:
        user = User(email=unique_email(), password_hash="x")
        async with unit_of_work(session_maker) as uow:
            audit = audit_log(uow)
            audit.record("thing.create", actor=user.id, resource="thing", resource_id=7)
            audit.record("thing.update", actor=None, resource="thing", changes={"n": 2})

        first, second = await entries(session_maker)
        assert (first.action, first.actor_id, first.resource_id) == ("thing.create", user.id, "7")
        assert (second.action, second.actor_id, second.changes) == ("thing.update", None, {"n": 2})
        assert first.prev_hash == GENESIS_HASH
        assert second.prev_hash == first.hash
        assert second.id > first.id

    async def test_a_rolled_back_change_leaves_no_entry(self, session_maker: SessionMaker) -> None:
        async def failing_change() -> None:
            async with unit_of_work(session_maker) as uow:
                audit_log(uow).record("thing.create", actor=None, resource="thing")
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            await failing_change()

        assert await entries(session_maker) == []

    async def test_secrets_are_masked_at_any_depth(self, session_maker: SessionMaker) -> None:
        async with unit_of_work(session_maker) as uow:
            audit_log(uow).record(
                "thing.update",
                actor=None,
                resource="thing",
                changes={
                    "title": "kept",
                    "new_password": "hunter22",
                    "nested": {"API_KEY": "k", "list": [{"refresh_token": "t", "n": 1}]},
                },
            )

        [entry] = await entries(session_maker)
        assert entry.changes == {
            "title": "kept",
            "new_password": MASKED,
            "nested": {"API_KEY": MASKED, "list": [{"refresh_token": MASKED, "n": 1}]},
        }

    async def test_the_request_id_in_context_is_kept(self, session_maker: SessionMaker) -> None:
        with bind_context(request_id="req-1234567890"):
            async with unit_of_work(session_maker) as uow:
                audit_log(uow).record("thing.create", actor=None, resource="thing")

        [entry] = await entries(session_maker)
        assert entry.request_id == "req-1234567890"


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_log SET action = 'forged'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ],
    )
    async def test_the_database_refuses_changes(
        self, session_maker: SessionMaker, connection: AsyncConnection, statement: str
    ) -> None:
        async with unit_of_work(session_maker) as uow:
            audit_log(uow).record("thing.create", actor=None, resource="thing")

        with pytest.raises(DBAPIError, match="append-only"):
            async with connection.begin_nested():
                await connection.execute(text(statement))

        assert len(await entries(session_maker)) == 1


async def tamper(connection: AsyncConnection, statement: str, entry_id: int) -> None:
    """What only a superuser can do: change rows with the trigger off."""
    await connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    await connection.execute(text(statement), {"id": entry_id})
    await connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


class TestVerify:
    async def record_three(self, session_maker: SessionMaker) -> list[int]:
        async with unit_of_work(session_maker) as uow:
            audit = audit_log(uow)
            for number in range(3):
                audit.record("thing.create", actor=None, resource="thing", resource_id=number)
        return [entry.id for entry in await entries(session_maker)]

    async def verify(self, session_maker: SessionMaker) -> tuple[int, int | None, str]:
        async with unit_of_work(session_maker) as uow:
            report = await audit_log(uow).verify()
        if report.broken is None:
            return report.checked, None, ""
        return report.checked, report.broken.entry_id, report.broken.reason

    async def test_an_intact_chain_verifies(self, session_maker: SessionMaker) -> None:
        await self.record_three(session_maker)

        assert await self.verify(session_maker) == (3, None, "")

    async def test_a_changed_entry_is_named(
        self, session_maker: SessionMaker, connection: AsyncConnection
    ) -> None:
        ids = await self.record_three(session_maker)
        await tamper(connection, "UPDATE audit_log SET resource_id = '9' WHERE id = :id", ids[1])

        checked, broken, reason = await self.verify(session_maker)

        assert (checked, broken) == (1, ids[1])
        assert "changed" in reason

    async def test_a_removed_entry_breaks_the_link_of_the_next(
        self, session_maker: SessionMaker, connection: AsyncConnection
    ) -> None:
        ids = await self.record_three(session_maker)
        await tamper(connection, "DELETE FROM audit_log WHERE id = :id", ids[1])

        checked, broken, reason = await self.verify(session_maker)

        assert (checked, broken) == (1, ids[2])
        assert "link" in reason

    async def test_a_rewritten_chain_from_the_first_entry_is_caught(
        self, session_maker: SessionMaker, connection: AsyncConnection
    ) -> None:
        ids = await self.record_three(session_maker)
        await tamper(connection, "DELETE FROM audit_log WHERE id = :id", ids[0])

        assert (await self.verify(session_maker))[:2] == (0, ids[1])


@pytest.fixture(scope="module")
async def committed(service_urls: ServiceUrls) -> AsyncIterator[Settings]:
    """A database of this module's own: concurrent writers commit for real."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield make_settings(database_url=url)


class TestConcurrentWriters:
    async def test_the_chain_never_forks(self, committed: Settings) -> None:
        engine = create_engine(committed.database_url, pool_size=8)
        session_maker = create_session_maker(engine)
        writers, entries_each = 16, 3

        async def write(writer: int) -> None:
            for number in range(entries_each):
                async with unit_of_work(session_maker) as uow:
                    # A statement first, so the writers hold transactions open side by side.
                    await uow.session.execute(text("SELECT 1"))
                    audit_log(uow).record(
                        "thing.create", actor=None, resource=f"writer-{writer}", resource_id=number
                    )

        try:
            await asyncio.gather(*(write(writer) for writer in range(writers)))
            async with unit_of_work(session_maker) as uow:
                report = await audit_log(uow).verify()
                async with session_maker() as session:
                    total = (
                        await session.execute(select(func.count()).select_from(AuditEntry))
                    ).scalar_one()
                    distinct_links = (
                        await session.execute(select(func.count(AuditEntry.prev_hash.distinct())))
                    ).scalar_one()
        finally:
            await engine.dispose()

        assert total == writers * entries_each
        # A fork would give two entries the same predecessor.
        assert distinct_links == total
        assert report.broken is None
        assert report.checked == total
