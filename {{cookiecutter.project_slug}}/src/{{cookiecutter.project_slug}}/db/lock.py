"""Locks that let any number of processes run migrations at once, one at a time.

PostgreSQL: a session-level advisory lock held on the migration connection itself (a NullPool
engine, so nothing leaks into a pool). It is acquired by polling `pg_try_advisory_lock` between
commits, never by a blocking call or inside an open transaction: a blocking or idle-in-transaction
waiter can deadlock `CREATE INDEX CONCURRENTLY` run by the holder. If the holder dies, its
connection dies and PostgreSQL frees the lock; keepalives and `client_connection_check_interval`
make that take seconds, even when the holder was killed in the middle of a statement.
SQLite (the embedded default): an exclusive file lock next to the database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout
from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.errors import (
    DatabaseUnreachableError,
    LockLostError,
    LockTimeoutError,
    MigrationError,
    PoolerDetectedError,
    first_line,
)

log = get_logger(__name__)

PROGRESS_INTERVAL_SECONDS = 5.0
# Scraped when migrations run inside a served process; one-shot CLI runs log the same numbers.
LOCK_ATTEMPTS = Counter(
    "migration_lock_attempts_total", "pg_try_advisory_lock calls made while waiting to migrate."
)
LOCK_WAIT = Histogram(
    "migration_lock_wait_seconds",
    "Time from the first attempt until the migration lock was held, or the wait gave up.",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
LOCK_HOLD = Histogram(
    "migration_lock_hold_seconds",
    "Time the migration lock was held.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
MAX_POLL_SECONDS = 1.0
_jitter = random.SystemRandom()

# Server settings for the lock session. Keepalives and the connection check let PostgreSQL notice
# a killed holder within seconds; idle timeouts set on the role must not end a waiting session.
_SESSION_SETTINGS = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "idle_in_transaction_session_timeout": "0",
}
_SESSION_SETTINGS_PG14 = {"idle_session_timeout": "0", "client_connection_check_interval": "1000"}

# A prepared statement that already exists, or does not, on a fresh session: another client's
# statements are on this server session, which only happens behind a transaction pooler.
_SHARED_SESSION_SQLSTATES = frozenset({"42P05", "26000"})

# Keys held by the current task or thread: a nested call fails fast instead of waiting on itself.
_held_keys: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "held_migration_locks", default=frozenset()
)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key: the first 8 bytes of SHA-256 of `name`.

    Never Python's `hash()`: it is salted per process, so two processes would take different keys
    and exclude nothing.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _key_halves(key: int) -> dict[str, int]:
    # pg_locks shows a bigint key as two oids: the high half in classid, the low one in objid.
    return {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}


_HOLDS_LOCK = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND objsubid = 1"
    " AND classid::bigint = :hi AND objid::bigint = :lo)"
)


def holds_lock(connection: Connection, key: int) -> bool:
    """Whether this session still holds `key` (checked before each revision is recorded)."""
    return bool(connection.execute(_HOLDS_LOCK, _key_halves(key)).scalar_one())


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int
    application_name: str
    client_addr: str | None
    state: str | None
    query: str | None
    query_start: datetime | None

    def describe(self) -> str:
        started = self.query_start.isoformat(timespec="seconds") if self.query_start else "?"
        return (
            f"pid {self.pid} (application_name {self.application_name or '-'!r}, "
            f"client {self.client_addr or 'local socket'}, state {self.state}, "
            f"query started {started}: {(self.query or '')[:120]!r})"
        )


async def lock_holder(connection: AsyncConnection, key: int) -> LockHolder | None:
    row = (
        await connection.execute(
            text(
                "SELECT a.pid, a.application_name, a.client_addr::text, a.state, a.query,"
                " a.query_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
            ),
            _key_halves(key),
        )
    ).first()
    await connection.commit()
    return LockHolder(*row) if row is not None else None


async def _configure_session(connection: AsyncConnection) -> None:
    version = (await connection.execute(text("SHOW server_version_num"))).scalar_one()
    settings = dict(_SESSION_SETTINGS)
    if int(version) >= 140000:
        settings.update(_SESSION_SETTINGS_PG14)
    for name, value in settings.items():
        await connection.execute(
            text("SELECT set_config(:name, :value, false)"), {"name": name, "value": value}
        )
    await connection.commit()


def _shares_a_session(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _SHARED_SESSION_SQLSTATES


_POOLER_MESSAGE = (
    "the database URL goes through a transaction-pooling proxy (PgBouncer?): server sessions are "
    "shared between clients, so a session lock is unsafe; set MIGRATION_DATABASE_URL to a direct "
    "connection (or MIGRATION_LOCK=off to run unlocked)"
)


async def _refuse_transaction_pooling(engine: AsyncEngine, connection: AsyncConnection) -> None:
    """A session lock is only safe when every statement reaches the same server session.

    Behind PgBouncer in transaction mode, consecutive transactions may run on different backends:
    the lock would be taken on one and the migration run on another. A quiet pooler hands the
    same backend back every time, so a second connection is opened too: straight to PostgreSQL it
    always gets a session of its own, while a pooler gives it the one just released.
    """
    pids = set()
    for _ in range(3):
        pids.add((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        await connection.commit()
    try:
        async with engine.connect() as other:
            other_pid = (await other.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await other.commit()
    except DBAPIError as exc:
        if not _shares_a_session(exc):
            raise
        raise PoolerDetectedError(_POOLER_MESSAGE) from exc
    if len(pids) > 1 or other_pid in pids:
        raise PoolerDetectedError(_POOLER_MESSAGE)


async def _acquire(connection: AsyncConnection, key: int, name: str, wait_seconds: float) -> float:
    started = time.monotonic()
    next_report = started + PROGRESS_INTERVAL_SECONDS
    delay = 0.05
    while True:
        LOCK_ATTEMPTS.inc()
        locked = (
            await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        ).scalar_one()
        # Commit after every attempt: a waiter must never sit idle in a transaction.
        await connection.commit()
        if locked:
            waited = time.monotonic() - started
            LOCK_WAIT.labels("acquired").observe(waited)
            return waited
        now = time.monotonic()
        if now - started >= wait_seconds:
            LOCK_WAIT.labels("timeout").observe(now - started)
            holder = await lock_holder(connection, key)
            raise LockTimeoutError(
                f"gave up after {wait_seconds:g}s waiting for migration lock {name!r} (key {key}), "
                f"held by {holder.describe() if holder else 'a session that has just ended'}; "
                "wait for it to finish, or raise --lock-timeout"
            )
        if now >= next_report:
            holder = await lock_holder(connection, key)
            log.info(
                "waiting for migration lock",
                lock=name,
                waited_s=round(now - started, 1),
                holder_pid=holder.pid if holder else None,
                holder=holder.application_name if holder else None,
            )
            next_report = now + PROGRESS_INTERVAL_SECONDS
        # Jittered backoff keeps a crowd of replicas from polling in lock-step.
        remaining = max(0.0, wait_seconds - (now - started))
        await asyncio.sleep(min(delay * _jitter.uniform(0.5, 1.0), remaining))
        delay = min(delay * 2, MAX_POLL_SECONDS)


@asynccontextmanager
async def _nesting_guard(key: int, name: str) -> AsyncIterator[None]:
    held = _held_keys.get()
    if key in held:
        raise MigrationError(
            f"migration lock {name!r} is already held by this process (a nested migration call); "
            "run migrations from one place"
        )
    token = _held_keys.set(held | {key})
    try:
        yield
    finally:
        _held_keys.reset(token)


@asynccontextmanager
async def advisory_lock(
    url: str,
    *,
    key: int,
    name: str,
    wait_seconds: float,
    application_name: str,
    enabled: bool = True,
) -> AsyncIterator[AsyncConnection]:
    """A connection holding the advisory lock `key` (`name` in messages); released on exit."""
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={"server_settings": {"application_name": application_name[:63]}},
    )
    try:
        async with _nesting_guard(key, name):
            try:
                connection = await engine.connect()
            except (OSError, OperationalError, DBAPIError) as exc:
                if isinstance(exc, DBAPIError) and _shares_a_session(exc):
                    raise PoolerDetectedError(_POOLER_MESSAGE) from exc
                raise DatabaseUnreachableError(
                    f"cannot connect to the database ({type(exc).__name__}: {first_line(exc)}); "
                    "check DATABASE_URL (or MIGRATION_DATABASE_URL) and that PostgreSQL is running"
                ) from exc
            try:
                if not enabled:
                    log.warning("migration lock disabled (MIGRATION_LOCK=off); running unlocked")
                    yield connection
                    return
                await _configure_session(connection)
                await _refuse_transaction_pooling(engine, connection)
                waited = await _acquire(connection, key, name, wait_seconds)
                log.info("migration lock acquired", lock=name, key=key, waited_s=round(waited, 2))
                held_since = time.monotonic()
                try:
                    yield connection
                except BaseException:
                    # The block's own error (a lost connection, a signal) says more than a
                    # failed release after it; the lock goes with the session in any case.
                    with contextlib.suppress(LockLostError):
                        await _release(connection, key, name)
                    raise
                finally:
                    held = time.monotonic() - held_since
                    LOCK_HOLD.observe(held)
                await _release(connection, key, name)
                log.info("migration lock released", lock=name, held_s=round(held, 2))
            finally:
                await connection.close()
    finally:
        await engine.dispose()


async def _release(connection: AsyncConnection, key: int, name: str) -> None:
    """Unlock explicitly; a lock that is no longer ours is an error, never a silent success."""
    if connection.invalidated:
        # The session is gone, and with it the lock. Unlocking now would run on a new session
        # (SQLAlchemy reconnects an invalidated connection), which holds nothing to release.
        raise LockLostError(
            f"the migration connection was lost while holding {name!r}; the running revision "
            "was rolled back; check the state with `db current` and retry"
        )
    try:
        await connection.rollback()
        released = (
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        ).scalar_one()
        await connection.commit()
    except DBAPIError as exc:
        # The session is gone, and with it the lock: nothing is left to release.
        raise LockLostError(
            f"the migration connection was lost while holding {name!r} ({first_line(exc)}); "
            "the running revision was rolled back; check the state with `db current` and retry"
        ) from exc
    if not released:
        raise LockLostError(
            f"migration lock {name!r} was no longer held when releasing it; "
            "check the database state with `db current`"
        )


@asynccontextmanager
async def file_lock(url: str, *, wait_seconds: float) -> AsyncIterator[AsyncConnection]:
    """SQLite: a connection used under an exclusive lock on `<database>.migrate.lock`."""
    database = make_url(url).database
    in_memory = not database or database == ":memory:"
    if not in_memory:
        Path(database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=NullPool)
    lock = None if in_memory else FileLock(f"{database}.migrate.lock")
    try:
        if lock is not None:
            try:
                await asyncio.to_thread(lock.acquire, timeout=wait_seconds)
            except Timeout:
                raise LockTimeoutError(
                    f"gave up after {wait_seconds:g}s waiting for migration lock "
                    f"{lock.lock_file}; another process is migrating this SQLite file"
                ) from None
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            if lock is not None:
                lock.release()
    finally:
        await engine.dispose()
