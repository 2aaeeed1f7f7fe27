"""Migrations: one history, reversible, matching the models, and safe to run from many processes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.models import Base
from tests.conftest import asyncpg_dsn, make_settings
from tests.processes import (
    SLUG,
    Finished,
    database_version,
    fresh_database,
    head_revision,
    revisions,
    run_cli,
    run_command,
    service_env,
)
from tests.services import ServiceUrls

# sha256-based, so it never changes between processes, hosts or Python versions. Changing the
# derivation would let an old and a new release migrate the same database at the same time.
PINNED_LOCK_NAME = "acme:orders:public.alembic_version"
PINNED_LOCK_KEY = 4403934458339911243


async def table_names(url: str) -> set[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


def upgrades_logged(results: list[Finished], revision: str) -> int:
    """How many processes logged applying `revision` (alembic logs one line per step)."""
    return sum(
        line.count(f"-> {revision},")
        for result in results
        for line in result.stderr.splitlines()
        if "Running upgrade" in line
    )


class TestHistory:
    def test_there_is_exactly_one_head(self) -> None:
        assert len(revisions().get_heads()) == 1

    def test_every_revision_can_be_reached_from_base(self) -> None:
        script = revisions()
        chain = list(script.iterate_revisions(head_revision(), "base"))
        assert {revision.revision for revision in script.walk_revisions()} == {
            revision.revision for revision in chain
        }


async def test_upgrade_downgrade_upgrade_round_trip(service_urls: ServiceUrls) -> None:
    model_tables = set(Base.metadata.tables)
    async with fresh_database(service_urls.database) as url:
        settings = make_settings(database_url=url)

        await migrate.upgrade(settings)
        assert await table_names(url) == {*model_tables, "alembic_version"}
        assert await database_version(url) == head_revision()

        await migrate.downgrade(settings, "base")
        assert await table_names(url) == {"alembic_version"}
        assert await database_version(url) is None

        await migrate.upgrade(settings)
        assert await table_names(url) == {*model_tables, "alembic_version"}
        assert await database_version(url) == head_revision()


async def test_models_match_the_migrations(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff: list[Any] = compare_metadata(context, Base.metadata)
        return diff

    async with engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == [], "models and migrations differ; run `make revision msg=...`"


class TestLockKey:
    def test_key_is_pinned(self) -> None:
        assert migrate.lock_key(PINNED_LOCK_NAME) == PINNED_LOCK_KEY

    def test_name_is_slug_database_and_version_table(self) -> None:
        name = migrate.lock_name("postgresql+asyncpg://user:pw@db.internal:5432/app")
        assert name == f"{SLUG}:app:public.alembic_version"

    def test_key_fits_a_signed_bigint(self) -> None:
        for name in ("", "a", PINNED_LOCK_NAME, "x" * 1000):
            assert -(2**63) <= migrate.lock_key(name) < 2**63

    def test_different_databases_get_different_keys(self) -> None:
        first = migrate.lock_name("postgresql+asyncpg://db/one")
        second = migrate.lock_name("postgresql+asyncpg://db/two")
        assert migrate.lock_key(first) != migrate.lock_key(second)

    @pytest.mark.slow
    async def test_key_is_the_same_under_any_hash_seed(self) -> None:
        code = f"from {SLUG}.db.migrate import lock_key; print(lock_key({PINNED_LOCK_NAME!r}))"
        results = await asyncio.gather(
            *(
                run_command(
                    sys.executable,
                    "-c",
                    code,
                    env=service_env(PYTHONHASHSEED=seed),
                )
                for seed in ("0", "1", "4242")
            )
        )
        assert [result.stdout.strip() for result in results] == [str(PINNED_LOCK_KEY)] * 3, [
            result.stderr for result in results
        ]


async def _hold_lock(url: str, application_name: str) -> asyncpg.Connection:
    holder = await asyncpg.connect(
        asyncpg_dsn(url), server_settings={"application_name": application_name}
    )
    await holder.execute("SELECT pg_advisory_lock($1)", migrate.lock_key(migrate.lock_name(url)))
    return holder


async def _migrator_count(watcher: asyncpg.Connection) -> int:
    """Migrator sessions on the watcher's database; other tests' migrators use other databases."""
    count: int = await watcher.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE $1",
        f"{SLUG}-migrator:%",
    )
    return count


async def _wait_for_migrators(url: str, count: int, limit_seconds: float = 120.0) -> None:
    """Until `count` migrator processes are connected (and so polling for the lock).

    The limit only catches a hang: on a loaded machine, starting four interpreters takes a while.
    """
    watcher = await asyncpg.connect(asyncpg_dsn(url))
    try:
        deadline = time.monotonic() + limit_seconds
        while (waiting := await _migrator_count(watcher)) < count:
            assert time.monotonic() < deadline, f"only {waiting} of {count} migrators connected"
            await asyncio.sleep(0.1)
    finally:
        await watcher.close()


@pytest.mark.slow
async def test_concurrent_upgrades_apply_each_revision_once(service_urls: ServiceUrls) -> None:
    async with fresh_database(service_urls.database) as url:
        env = service_env(DATABASE_URL=url)
        # Hold the lock until all four are waiting, so they really race for it when released.
        holder = await _hold_lock(url, "test-gate")
        try:
            runs = [
                asyncio.ensure_future(run_cli("db", "upgrade", "--lock-timeout", "60", env=env))
                for _ in range(4)
            ]
            await _wait_for_migrators(url, 4)
        finally:
            await holder.close()
        results = await asyncio.gather(*runs)
        version = await database_version(url)

    assert [result.returncode for result in results] == [0, 0, 0, 0], [r.stderr for r in results]
    assert version == head_revision()
    for revision in revisions().walk_revisions():
        assert upgrades_logged(results, revision.revision) == 1, revision.revision


@pytest.mark.slow
async def test_upgrade_gives_up_after_lock_timeout_and_names_the_holder(
    service_urls: ServiceUrls,
) -> None:
    async with fresh_database(service_urls.database) as url:
        holder = await _hold_lock(url, "test-lock-holder")
        watcher = await asyncpg.connect(asyncpg_dsn(url))
        try:
            holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
            spawned = time.monotonic()
            run = asyncio.ensure_future(
                run_cli(
                    "db",
                    "upgrade",
                    "--lock-timeout",
                    "2",
                    env=service_env(DATABASE_URL=url),
                )
            )
            # The wait is the migrator's session: from its connection to its disconnection.
            # Interpreter start-up and shutdown (slow on a loaded machine) stay outside it.
            await _wait_for_migrators(url, 1)
            connected = time.monotonic()
            # The process's exit closes the session too, so this ends either way.
            while True:
                if not await _migrator_count(watcher):
                    disconnected = time.monotonic()
                    break
                await asyncio.sleep(0.05)
            result = await run
        finally:
            await watcher.close()
            await holder.close()
        version = await database_version(url)

    assert result.returncode == 3, result.stderr
    assert f"pid {holder_pid}" in result.stderr
    assert "test-lock-holder" in result.stderr
    assert migrate.lock_name(url) in result.stderr
    assert "gave up after 2s" in result.stderr
    # It waited at least the timeout: the wait lies between spawning and disconnecting.
    assert disconnected - spawned >= 2.0, f"gave up {disconnected - spawned:.1f}s after spawning"
    # And the 2s timeout ended it, not the default of 300s: the margin is for a machine so busy
    # that connecting and shutting down take a minute (seen with a load average of 14 on 2 cores).
    waited = disconnected - connected
    assert waited < 150, f"connected for about {waited:.1f}s with a 2s lock timeout"
    assert version is None, "nothing may be applied without the lock"


@pytest.mark.slow
async def test_unknown_revision_exits_5(service_urls: ServiceUrls) -> None:
    async with fresh_database(service_urls.database) as url:
        result = await run_cli(
            "db", "upgrade", "no_such_revision", env=service_env(DATABASE_URL=url)
        )
    assert result.returncode == 5, result.stderr
    assert "no_such_revision" in result.stderr


@pytest.mark.slow
async def test_unreachable_database_exits_4() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    result = await run_cli("db", "upgrade", env=service_env(DATABASE_URL=url))
    assert result.returncode == 4, result.stderr
    assert "cannot connect to the database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
async def test_concurrent_sqlite_upgrades_share_a_file_lock(tmp_path: Path) -> None:
    database = tmp_path / "service.db"
    env = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    results = await asyncio.gather(*(run_cli("db", "upgrade", env=env) for _ in range(2)))

    assert [result.returncode for result in results] == [0, 0], [r.stderr for r in results]
    with closing(sqlite3.connect(database)) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(head_revision(),)]
    for revision in revisions().walk_revisions():
        assert upgrades_logged(results, revision.revision) == 1, revision.revision
