"""Engine, session factory and the unit of work.

A unit of work is one transaction: it commits when its block succeeds, rolls back on any error,
and only then runs the callbacks registered with `after_commit` (enqueueing tasks, for example),
so a worker never sees an id whose row was not committed. Work registered with `before_commit`
(appending to the audit chain) runs last inside the transaction, so locks it takes are held only
for the commit itself.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

SessionMaker = async_sessionmaker[AsyncSession]


def create_engine(
    url: str, *, pool_size: int = 10, application_name: str | None = None
) -> AsyncEngine:
    """An engine with settings that suit the backend: pooled PostgreSQL, or a local SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    _ping_when_idle(engine)
    return engine


# SQLAlchemy's `pool_pre_ping` costs three round trips on every checkout with asyncpg (BEGIN, a
# ping, ROLLBACK): about 15% of an authenticated read's server CPU. Busy connections are known
# to be alive, so only one that sat in the pool this long is pinged; one that died while in use
# (a database restart) raises a disconnect error, which makes SQLAlchemy discard the whole pool:
# those requests answer 503 and the next ones connect afresh (tests/e2e/test_restarts.py).
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    pool_events = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checked_in(_: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool replaces the connection and tries again.
            raise DisconnectionError(f"idle connection failed its ping: {exc!r}") from exc

    event.listen(pool_events, "checkin", checked_in)
    event.listen(pool_events, "checkout", checked_out)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # SQLite ignores foreign keys unless asked; WAL lets readers work during a write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_session_maker(engine: AsyncEngine) -> SessionMaker:
    # Objects stay readable after commit: responses are built from them once the data is saved.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Per session maker, the same maker without transactions (see `without_transactions`).
_AUTOCOMMIT: weakref.WeakKeyDictionary[SessionMaker, SessionMaker] = weakref.WeakKeyDictionary()


def without_transactions(session_maker: SessionMaker) -> SessionMaker:
    """`session_maker` in autocommit mode: no BEGIN, no COMMIT, each statement on its own.

    For requests that only read. BEGIN and COMMIT are two of an item read's four database round
    trips and about 15% of its server CPU; a read loses nothing without them (each SELECT
    sees committed data). A write made in this mode commits at once, statement by statement:
    work that must be atomic belongs in a request with a transaction (POST, PATCH, PUT, DELETE).
    A maker bound to a connection (a test's outer transaction) is returned as it is.
    """
    bind = session_maker.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        return session_maker
    autocommit = _AUTOCOMMIT.get(session_maker)
    if autocommit is None:
        # The options engine shares the pool; asyncpg and aiosqlite switch modes client-side.
        options = {**session_maker.kw, "bind": bind.execution_options(isolation_level="AUTOCOMMIT")}
        autocommit = async_sessionmaker(class_=session_maker.class_, **options)
        _AUTOCOMMIT[session_maker] = autocommit
    return autocommit


def savepoint(session: AsyncSession) -> AbstractAsyncContextManager[object]:
    """A savepoint around writes that may fail, so a failure leaves the transaction usable.

    Without a transaction (`without_transactions`) a failed statement spoils nothing, and
    PostgreSQL refuses savepoints: the writes are only flushed.
    """
    bind = session.bind
    if (
        isinstance(bind, AsyncEngine)
        and bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        return _flushed(session)
    return session.begin_nested()


@asynccontextmanager
async def _flushed(session: AsyncSession) -> AsyncIterator[None]:
    yield
    await session.flush()


class UnitOfWork:
    """One transaction, its session, and the work to run once it has committed."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._after_commit: list[Callable[[], object]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await `callback` inside the transaction, just before it commits; a failure rolls
        the whole transaction back."""
        self._before_commit.append(callback)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` (a function or a coroutine function) once the transaction has
        committed, before the response is sent; dropped on rollback."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        while self._before_commit:
            await self._before_commit.pop(0)()
        await self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                if inspect.iscoroutinefunction(callback):
                    await callback()  # async follow-ups (cache invalidation) run on the loop
                else:
                    # Sync callbacks publish to brokers with blocking clients; off the loop.
                    await asyncio.to_thread(callback)
            except Exception:
                # The data is saved; a failed follow-up must not turn success into an error.
                log.exception("after-commit callback failed", callback=repr(callback))

    async def rollback(self) -> None:
        self._before_commit.clear()
        self._after_commit.clear()
        await self.session.rollback()


@asynccontextmanager
async def unit_of_work(session_maker: SessionMaker) -> AsyncIterator[UnitOfWork]:
    """Commit on success, roll back on any exception (including cancellation)."""
    async with session_maker() as session:
        uow = UnitOfWork(session)
        try:
            yield uow
        except BaseException:
            await uow.rollback()
            raise
        await uow.commit()
