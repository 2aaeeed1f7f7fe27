"""Alembic, run under a lock so that any number of processes can migrate at once.

PostgreSQL: a session-level advisory lock taken on the migration connection itself (a NullPool
engine, so nothing leaks into a pool). It is acquired by polling `pg_try_advisory_lock` between
commits, never by a blocking call or inside an open transaction, and the current revision is read
only once the lock is held: a process that waited finds the database at head and does nothing.
If the process dies the connection dies and PostgreSQL frees the lock.
SQLite (the embedded default): an exclusive file lock next to the database file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from filelock import FileLock, Timeout
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

SCRIPT_LOCATION = "{{ cookiecutter.project_slug }}:db/migrations"
VERSION_TABLE = "alembic_version"
LOCK_NAMESPACE = "{{ cookiecutter.project_slug }}"
PROGRESS_INTERVAL_SECONDS = 5.0
_jitter = random.SystemRandom()


class MigrationError(Exception):
    """A migration command failed; `exit_code` tells scripts which way (see the README)."""

    exit_code = 1


class DatabaseUnreachableError(MigrationError):
    exit_code = 4


class LockTimeoutError(MigrationError):
    exit_code = 3


class LockLostError(MigrationError):
    exit_code = 6


class RevisionError(MigrationError):
    exit_code = 5


def lock_key(name: str) -> int:
    """A stable signed 64-bit key (Python's `hash()` is salted per process, so never that)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_name(url: str, *, schema: str = "public", version_table: str = VERSION_TABLE) -> str:
    return f"{LOCK_NAMESPACE}:{make_url(url).database}:{schema}.{version_table}"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("version_table", VERSION_TABLE)
    config.attributes["connection"] = connection
    return config


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int
    application_name: str
    client_addr: str | None
    state: str | None
    query: str | None
    query_start: Any

    def describe(self) -> str:
        return (
            f"pid {self.pid} ({self.application_name or 'no application_name'}"
            f", client {self.client_addr or 'local socket'}, state {self.state}"
            f", running since {self.query_start}: {(self.query or '')[:120]!r})"
        )


async def _lock_holder(connection: AsyncConnection, key: int) -> LockHolder | None:
    row = (
        await connection.execute(
            text(
                "SELECT a.pid, a.application_name, a.client_addr::text, a.state, a.query,"
                " a.query_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
            ),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        )
    ).first()
    await connection.commit()
    return LockHolder(*row) if row is not None else None


async def _acquire(connection: AsyncConnection, key: int, name: str, wait_seconds: float) -> float:
    started = time.monotonic()
    next_report = started + PROGRESS_INTERVAL_SECONDS
    delay = 0.05
    while True:
        locked = (
            await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        ).scalar_one()
        # Commit after every attempt: a waiter must never sit idle in a transaction.
        await connection.commit()
        if locked:
            return time.monotonic() - started
        now = time.monotonic()
        if now - started >= wait_seconds:
            holder = await _lock_holder(connection, key)
            raise LockTimeoutError(
                f"gave up after {wait_seconds:g}s waiting for migration lock {name!r} (key {key}), "
                f"held by {holder.describe() if holder else 'a session that has just ended'}; "
                "wait for it to finish, or raise --lock-timeout"
            )
        if now >= next_report:
            holder = await _lock_holder(connection, key)
            log.info(
                "waiting for migration lock",
                lock=name,
                waited_s=round(now - started, 1),
                holder_pid=holder.pid if holder else None,
                holder=holder.application_name if holder else None,
            )
            next_report = now + PROGRESS_INTERVAL_SECONDS
        # Jitter keeps a crowd of replicas from polling in lock-step.
        await asyncio.sleep(
            min(delay, max(0.0, wait_seconds - (now - started))) * _jitter.uniform(0.5, 1.0)
        )
        delay = min(delay * 2, 1.0)


@asynccontextmanager
async def _postgres_connection(url: str, wait_seconds: float) -> AsyncIterator[AsyncConnection]:
    application_name = f"{LOCK_NAMESPACE}-migrator:{socket.gethostname()}:{os.getpid()}"[:63]
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    name = lock_name(url)
    key = lock_key(name)
    try:
        try:
            connection = await engine.connect()
        except (OSError, OperationalError, DBAPIError) as exc:
            raise DatabaseUnreachableError(
                f"cannot connect to the database ({type(exc).__name__}: {_first_line(exc)}); "
                "check DATABASE_URL and that PostgreSQL is running"
            ) from exc
        try:
            waited = await _acquire(connection, key, name, wait_seconds)
            log.info("migration lock acquired", lock=name, key=key, waited_s=round(waited, 2))
            held_since = time.monotonic()
            try:
                yield connection
            finally:
                await connection.rollback()
                released = (
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                ).scalar_one()
                await connection.commit()
                held = round(time.monotonic() - held_since, 2)
                if not released:
                    raise LockLostError(
                        f"migration lock {name!r} was no longer held when releasing it; "
                        "check the database state with `db current`"
                    )
                log.info("migration lock released", lock=name, held_s=held)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


@asynccontextmanager
async def _sqlite_connection(url: str, wait_seconds: float) -> AsyncIterator[AsyncConnection]:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    lock_path = f"{database}.migrate.lock" if database and database != ":memory:" else None
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        if lock_path is None:
            async with engine.connect() as connection:
                yield connection
            return
        file_lock = FileLock(lock_path)
        try:
            await asyncio.to_thread(file_lock.acquire, timeout=wait_seconds)
        except Timeout:
            raise LockTimeoutError(
                f"gave up after {wait_seconds:g}s waiting for migration lock {lock_path}; "
                "another process is migrating this SQLite file"
            ) from None
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            file_lock.release()
    finally:
        await engine.dispose()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


async def run_locked(
    settings: Settings,
    action: Callable[[Config], object],
    *,
    lock_timeout: float | None = None,
) -> None:
    """Run an Alembic command on a locked connection (the migration URL when one is set)."""
    url = settings.migration_database_url or settings.database_url
    timeout = lock_timeout if lock_timeout is not None else settings.migration_lock_timeout_seconds
    connect = _sqlite_connection if url.startswith("sqlite") else _postgres_connection

    def run(sync_connection: Connection) -> None:
        try:
            action(alembic_config(sync_connection))
        except CommandError as exc:
            raise RevisionError(f"{exc}; list revisions with `db history`") from exc

    async with connect(url, timeout) as connection:
        await connection.run_sync(run)
        await connection.commit()


async def upgrade(
    settings: Settings, revision: str = "head", *, lock_timeout: float | None = None
) -> None:
    await run_locked(
        settings, lambda config: command.upgrade(config, revision), lock_timeout=lock_timeout
    )


async def downgrade(
    settings: Settings, revision: str, *, lock_timeout: float | None = None
) -> None:
    await run_locked(
        settings, lambda config: command.downgrade(config, revision), lock_timeout=lock_timeout
    )


async def current(settings: Settings) -> None:
    await run_locked(settings, lambda config: command.current(config, verbose=False))


async def history(settings: Settings) -> None:
    await run_locked(settings, lambda config: command.history(config))


async def revision(settings: Settings, message: str, *, autogenerate: bool) -> None:
    await run_locked(
        settings,
        lambda config: command.revision(config, message=message, autogenerate=autogenerate),
    )


def code_heads() -> frozenset[str]:
    """The head revisions the installed code expects (read from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def database_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at; empty when it was never migrated."""
    has_table = await connection.run_sync(lambda sync: sync.dialect.has_table(sync, VERSION_TABLE))
    if not has_table:
        return frozenset()
    rows = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
    return frozenset(row[0] for row in rows)
