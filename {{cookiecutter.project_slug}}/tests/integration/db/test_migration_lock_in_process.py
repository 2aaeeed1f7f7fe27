"""The migration lock used inside one process: a lifespan, nested and threaded calls, a lock given
up inside the locked block, both transaction modes, the key, and offline `--sql`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import Connection, text
from sqlalchemy.util import await_only

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.lock import holds_lock
from tests.conftest import make_settings
from tests.integration.db.lock_harness import (
    LOCK_SCRIPTS,
    OBSERVE_SECONDS,
    REVISIONS,
    VERSION_TABLE,
    assert_serial,
    audit_rows,
    configure,
    connect,
    key_of,
    lock_database,
    probe,
    version_of,
)
from tests.processes import free_port, run_cli, run_command, service_env
from tests.services import ServiceUrls

pytestmark = pytest.mark.xdist_group("migration-lock")

# sha256-based: the same in every process, on every host and Python version.
PINNED_LOCK_NAME = "acme:orders:public.lock_test_version"
PINNED_LOCK_KEY = 3808324035897872900


def upgrade_to(revision: str) -> Callable[[Config], None]:
    def action(config: Config) -> None:
        command.upgrade(config, revision)

    return action


async def run_locked(
    settings: Settings,
    action: Callable[[Config], object],
    *,
    version_table: str = VERSION_TABLE,
    transaction_per_migration: bool = False,
) -> None:
    await migrate.run_locked(
        settings,
        action,
        script_location=LOCK_SCRIPTS,
        version_table=version_table,
        transaction_per_migration=transaction_per_migration,
    )


async def lock_rows(url: str, version_table: str = VERSION_TABLE) -> int:
    async with probe(url, version_table) as prober:
        return await prober.lock_rows()


@pytest.fixture
async def lock_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with lock_database(service_urls.database) as url:
        yield url


@pytest.mark.parametrize("transaction_per_migration", [False, True])
async def test_autocommit_revision_passes_in_both_transaction_modes(
    lock_url: str, transaction_per_migration: bool
) -> None:
    await run_locked(
        make_settings(database_url=lock_url),
        upgrade_to("head"),
        transaction_per_migration=transaction_per_migration,
    )

    rows = await audit_rows(lock_url)
    assert [row.revision for row in rows] == list(REVISIONS)
    assert_serial(rows)
    assert await version_of(lock_url) == REVISIONS[-1]
    connection = await connect(lock_url)
    try:
        valid = await connection.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass",
            f"ix_{VERSION_TABLE}_big",
        )
    finally:
        await connection.close()
    assert valid is True
    assert await lock_rows(lock_url) == 0


async def test_key_is_free_right_after_a_run_inside_a_lifespan(lock_url: str) -> None:
    settings = make_settings(database_url=lock_url)
    observed: list[tuple[int, bool]] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_locked(settings, upgrade_to("head"))
        async with probe(lock_url) as prober:
            observed.append((await prober.lock_rows(), await prober.try_lock()))
        yield

    app = FastAPI(lifespan=lifespan)
    for _ in range(2):  # a restart finds the database at head and the lock free again
        async with LifespanManager(app):
            pass

    assert observed == [(0, True), (0, True)]
    assert [row.revision for row in await audit_rows(lock_url)] == list(REVISIONS)


async def test_waits_and_holds_are_measured(lock_url: str) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("migration_lock_attempts_total"),
        sample("migration_lock_wait_seconds_count", outcome="acquired"),
        sample("migration_lock_hold_seconds_count"),
    )

    await run_locked(make_settings(database_url=lock_url), upgrade_to("head"))

    after = (
        sample("migration_lock_attempts_total"),
        sample("migration_lock_wait_seconds_count", outcome="acquired"),
        sample("migration_lock_hold_seconds_count"),
    )
    assert after[0] >= before[0] + 1
    assert after[1:] == (before[1] + 1, before[2] + 1)


class TestReentrancy:
    async def test_nested_call_fails_fast_and_leaves_the_outer_lock_held(
        self, lock_url: str
    ) -> None:
        settings = make_settings(database_url=lock_url)
        seen: dict[str, object] = {}

        def outer(config: Config) -> None:
            connection: Connection = config.attributes["connection"]
            key: int = config.attributes["lock_key"]
            try:
                await_only(run_locked(settings, upgrade_to("head")))
            except migrate.MigrationError as exc:
                seen["nested"] = str(exc)
            # Another history nests fine, and unlocking its key leaves ours alone.
            await_only(run_locked(settings, upgrade_to("l1"), version_table="lock_test_other"))
            seen["still_held"] = holds_lock(connection, key)
            connection.commit()  # Alembic runs its own transactions
            command.upgrade(config, "head")

        async with asyncio.timeout(OBSERVE_SECONDS):
            await run_locked(settings, outer)

        assert "already held by this process" in str(seen["nested"])
        assert seen["still_held"] is True
        assert await version_of(lock_url) == REVISIONS[-1]
        assert await version_of(lock_url, "lock_test_other") == "l1"
        assert await lock_rows(lock_url) == 0
        assert await lock_rows(lock_url, "lock_test_other") == 0

    async def test_two_threads_serialise_without_deadlock(self, lock_url: str) -> None:
        settings = make_settings(database_url=lock_url)
        await configure(lock_url, **{"sleep:l2": 0.3})

        def in_thread() -> None:
            asyncio.run(run_locked(settings, upgrade_to("head")))

        async with asyncio.timeout(OBSERVE_SECONDS):
            await asyncio.gather(asyncio.to_thread(in_thread), asyncio.to_thread(in_thread))

        rows = await audit_rows(lock_url)
        assert [row.revision for row in rows] == list(REVISIONS)
        assert_serial(rows)
        assert await lock_rows(lock_url) == 0


class TestLockGivenUpInside:
    async def test_unlocking_inside_the_block_makes_the_wrapper_raise(self, lock_url: str) -> None:
        def release_it(config: Config) -> None:
            connection: Connection = config.attributes["connection"]
            connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": config.attributes["lock_key"]}
            )

        with pytest.raises(migrate.LockLostError, match="no longer held") as raised:
            await run_locked(make_settings(database_url=lock_url), release_it)

        assert raised.value.exit_code == 6
        assert await lock_rows(lock_url) == 0

    async def test_a_revision_that_loses_the_lock_is_rolled_back(self, lock_url: str) -> None:
        await configure(lock_url, **{"unlock:l2": 1})

        with pytest.raises(migrate.LockLostError, match="during l2") as raised:
            await run_locked(
                make_settings(database_url=lock_url),
                upgrade_to("head"),
                transaction_per_migration=True,
            )

        assert raised.value.exit_code == 6

        assert [row.revision for row in await audit_rows(lock_url)] == ["l1"]
        assert await version_of(lock_url) == "l1"
        assert await lock_rows(lock_url) == 0


class TestKey:
    def test_key_is_pinned(self) -> None:
        assert migrate.lock_key(PINNED_LOCK_NAME) == PINNED_LOCK_KEY

    def test_version_table_and_database_are_part_of_the_name(self) -> None:
        url = "postgresql+asyncpg://user@db.internal/orders"
        assert migrate.lock_name(url, version_table="lock_test_version").endswith(
            ":orders:public.lock_test_version"
        )
        assert key_of(url, "lock_test_a") != key_of(url, "lock_test_b")

    @pytest.mark.slow
    async def test_key_is_the_same_under_any_hash_seed(self) -> None:
        url = "postgresql+asyncpg://user@db.internal/orders"
        code = (
            "from {{ cookiecutter.project_slug }}.db import migrate; "
            f"print(migrate.lock_key(migrate.lock_name({url!r}, version_table='t')))"
        )
        results = await asyncio.gather(
            *(
                run_command(sys.executable, "-c", code, env=service_env(PYTHONHASHSEED=seed))
                for seed in ("1", "2")
            )
        )
        assert [result.stdout.strip() for result in results] == [str(key_of(url, "t"))] * 2, [
            result.stderr for result in results
        ]


@pytest.mark.slow
async def test_offline_sql_opens_no_connection() -> None:
    connections = 0

    async def count(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    port = free_port()
    sentinel = await asyncio.start_server(count, "127.0.0.1", port)
    try:
        result = await run_cli(
            "db",
            "upgrade",
            "--sql",
            env=service_env(
                DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/app",
                MIGRATION_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/app",
            ),
        )
    finally:
        sentinel.close()
        await sentinel.wait_closed()

    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE alembic_version" in result.stdout
    assert "CREATE TABLE users" in result.stdout
    assert connections == 0
