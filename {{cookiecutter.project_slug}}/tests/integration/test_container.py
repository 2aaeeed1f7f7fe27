"""The composition root builds the same graph everywhere and closes what it opened."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }} import container as container_module
from {{ cookiecutter.project_slug }}.container import build_container
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import create_engine
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate
from tests.conftest import asyncpg_dsn, make_settings
from tests.factories import PASSWORD, unique_email


async def backends_named(settings: Settings, application_name: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
    finally:
        await connection.close()
    return count


async def test_services_share_one_unit_of_work(settings: Settings) -> None:
    async with build_container(settings, role="cli") as services:
        async with services.unit_of_work() as uow:
            user = await services.users(uow).register(
                UserCreate(email=unique_email(), password=PASSWORD)
            )
        async with services.unit_of_work() as uow:
            token = (await services.auth(uow).start_session(user)).access_token
            found = await services.auth(uow).user_from_access_token(token)

    assert found.id == user.id


async def test_a_failure_after_start_up_closes_every_connection(settings: Settings) -> None:
    role = f"leak-{uuid.uuid4().hex[:8]}"
    application_name = f"{{ cookiecutter.project_slug }}-{role}"

    open_connections: list[int] = []

    async def start_then_fail() -> None:
        async with build_container(settings, role=role) as services:
            async with services.session_maker() as session:
                await session.execute(select(1))
            open_connections.append(await backends_named(settings, application_name))
            raise RuntimeError("start-up failed")

    with pytest.raises(RuntimeError, match="start-up failed"):
        await start_then_fail()

    assert open_connections == [1]
    assert await backends_named(settings, application_name) == 0


async def test_a_resource_that_cannot_start_leaves_the_opened_ones_closed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engines: list[AsyncEngine] = []
    disposed: list[AsyncEngine] = []

    def recording_create_engine(*args: Any, **kwargs: Any) -> AsyncEngine:
        engine = create_engine(*args, **kwargs)
        engines.append(engine)
        event.listen(engine.sync_engine, "engine_disposed", lambda _: disposed.append(engine))
        return engine

    monkeypatch.setattr(container_module, "create_engine", recording_create_engine)

    def failing_session_maker(engine: AsyncEngine) -> None:
        raise RuntimeError("the second resource cannot start")

    # The engine is opened first; the next step of the build then fails.
    monkeypatch.setattr(container_module, "create_session_maker", failing_session_maker)

    with pytest.raises(RuntimeError, match="second resource"):
        async with build_container(settings):
            pass

    assert len(engines) == 1
    assert disposed == engines


async def test_without_a_broker_the_api_process_relays_events_itself(settings: Settings) -> None:
    no_broker = make_settings(database_url=settings.database_url, redis_url=None)
    async with build_container(no_broker, role="api") as services:
        async with services.unit_of_work() as uow:
            user = await services.users(uow).register(
                UserCreate(email=unique_email(), password=PASSWORD)
            )

        # The commit kicked the relay loop running in this process; its handler sends the mail.
        async with asyncio.timeout(60):
            while True:
                async with services.unit_of_work() as uow:
                    if (await services.users(uow).get(user.id)).welcome_email_sent_at:
                        break
                await asyncio.sleep(0.05)
