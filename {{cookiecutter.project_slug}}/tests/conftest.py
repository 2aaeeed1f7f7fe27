"""Shared fixtures: a fresh PostgreSQL database built by the migrations, one rolled-back
transaction per test, and an HTTP client that runs the app's lifespan."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.config import Settings, load_settings
from {{ cookiecutter.project_slug }}.core.encryption import Encryptor
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    unit_of_work,
)
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models.types import bind_encryptor
from tests.factories import RecordedEvents
from tests.services import ServicesUnavailableError, ServiceUrls, namespace, resolve

SECRET_KEY = "test-secret-key-that-is-long-enough-for-hs256-0123456789"
# Only what this project uses: a missing service it never talks to must not stop the run.
REQUIRED_SERVICES = ("TEST_DATABASE_URL",{% if cookiecutter.use_redis == 'y' %} "TEST_REDIS_URL"{% elif cookiecutter.use_celery == 'y' %} "TEST_AMQP_URL"{% endif %})


@pytest.fixture(scope="session")
def service_urls() -> ServiceUrls:
    """Checked only by the tests that use a service, so `make test-unit` runs without them."""
    try:
        return resolve(REQUIRED_SERVICES)
    except ServicesUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str, name: str) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return (
        make_url(admin_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def database_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of its own for this test process, removed afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{{ cookiecutter.project_slug }}_{namespace()}_{worker}_{uuid.uuid4().hex[:6]}"
    url = await create_database(service_urls.database, name)
    yield url
    await drop_database(service_urls.database, name)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": SECRET_KEY,
        "log_level": "WARNING",
        "celery_broker_url": None,
        # Tests share one client address; the limits themselves are tested with their own.
        "rate_limit_default": "1000000/minute",
        "rate_limit_auth": "1000000/minute",
        # Failed logins from that shared address would add up across tests and runs.
        "login_max_failures_per_client": 1_000_000,
        # This run's own Redis keys: runs sharing a Redis never see each other's counters.
        "redis_key_prefix": f"{{ cookiecutter.project_slug }}-{namespace()}:",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
async def settings(database_url: str, service_urls: ServiceUrls) -> Settings:
{%- if cookiecutter.use_redis == 'y' %}
    settings = make_settings(database_url=database_url, redis_url=service_urls.redis)
{%- else %}
    settings = make_settings(database_url=database_url)
{%- endif %}
    # The schema comes from the migrations, exactly as in production; never create_all.
    await migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, pool_size=2)
    bind_encryptor(engine, Encryptor(settings.field_encryption_keys))
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One outer transaction per test, rolled back at the end whatever the test committed."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def session_maker(connection: AsyncConnection) -> SessionMaker:
    # Commits inside the code under test become savepoint releases inside the outer transaction.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def uow(session_maker: SessionMaker) -> AsyncIterator[UnitOfWork]:
    async with unit_of_work(session_maker) as uow:
        yield uow


@pytest.fixture
async def events(session_maker: SessionMaker) -> RecordedEvents:
    return await RecordedEvents.start(session_maker)


def make_app(settings: Settings, session_maker: SessionMaker) -> FastAPI:
    """The app on `settings`, its requests joining the test's rolled-back transaction."""

    @asynccontextmanager
    async def test_container(settings: Settings) -> AsyncIterator[Container]:
        # The real graph, with requests joining the test's rolled-back transaction. The events
        # they record stay in it, out of any relay's sight, so no relay run is asked for.
        async with build_container(settings) as container:
            yield dataclasses.replace(
                container, session_maker=session_maker, kick_relay=lambda: None
            )

    return create_app(settings, container_factory=test_container)


@pytest.fixture
def app(settings: Settings, session_maker: SessionMaker) -> FastAPI:
    return make_app(settings, session_maker)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client over `app`, with the app's lifespan running."""
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with serving(app) as client:
        yield client
