"""The transactional outbox against real PostgreSQL: nothing from a rollback, everything else at
least once and in order per aggregate, each handler's effect once, retries with backoff that
block nobody else, dead letters that can be re-driven, relays that share the work safely."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.core.errors import ConflictError, NotFoundError
from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    create_session_maker,
    unit_of_work,
)
from {{ cookiecutter.project_slug }}.models.outbox import DEAD, PENDING, SENT, OutboxEvent
from {{ cookiecutter.project_slug }}.repositories.outbox import OutboxRepository
from {{ cookiecutter.project_slug }}.schemas.pagination import PageParams
from {{ cookiecutter.project_slug }}.services.outbox import (
    Handler,
    OutboxPublisher,
    OutboxRelay,
    OutboxService,
    RelayPolicy,
)
from tests.conftest import make_settings
from tests.integration.services.outbox_relay_worker import HANDLER, Shipped, relay
from tests.processes import fresh_database
from tests.services import ServiceUrls

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class Pinged(Event):
    name: ClassVar[str] = "test.pinged"
    aggregate: ClassVar[str] = "key"

    key: str
    n: int


@pytest.fixture(scope="module")
async def database_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of this module's own: relays and handlers commit for real here."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM processed_events"))
        await connection.execute(text("DELETE FROM outbox"))
    yield engine
    await engine.dispose()


@pytest.fixture
def session_maker(engine: AsyncEngine) -> SessionMaker:
    return create_session_maker(engine)


async def publish(session_maker: SessionMaker, *events: Event) -> None:
    async with unit_of_work(session_maker) as uow:
        publisher = OutboxPublisher(uow, lambda: None)
        for event in events:
            await publisher.publish(event)


async def rows(session_maker: SessionMaker) -> Sequence[OutboxEvent]:
    async with session_maker() as session:
        return (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()


async def make_due(session_maker: SessionMaker, row: OutboxEvent) -> None:
    async with session_maker() as session, session.begin():
        await session.execute(
            text("UPDATE outbox SET available_at = now() WHERE id = :id"), {"id": row.id}
        )


def recording(
    seen: list[tuple[str, int]], failing: Callable[[Pinged], bool] = lambda _: False
) -> dict[str, list[Handler]]:
    async def handle(uow: UnitOfWork, event: Event) -> None:
        assert isinstance(event, Pinged)
        if failing(event):
            raise RuntimeError(f"cannot handle {event.key}/{event.n}")
        seen.append((event.key, event.n))

    return {Pinged.name: [Handler("tests.recording", handle)]}


async def test_a_rolled_back_transaction_publishes_nothing(session_maker: SessionMaker) -> None:
    kicks: list[str] = []

    async def change_then_fail() -> None:
        async with unit_of_work(session_maker) as uow:
            await OutboxPublisher(uow, lambda: kicks.append("kick")).publish(Pinged(key="a", n=1))
            raise RuntimeError("change failed")

    with pytest.raises(RuntimeError, match="change failed"):
        await change_then_fail()
    seen: list[tuple[str, int]] = []

    delivered = await OutboxRelay(session_maker, recording(seen), RelayPolicy()).drain()

    assert (delivered, seen, kicks) == (0, [], [])
    assert await rows(session_maker) == []


async def test_events_are_delivered_in_order_per_aggregate_and_marked_sent(
    session_maker: SessionMaker,
) -> None:
    events = [Pinged(key=key, n=n) for n in range(1, 6) for key in ("a", "b", "c")]
    await publish(session_maker, *events)
    seen: list[tuple[str, int]] = []
    relay_ = OutboxRelay(session_maker, recording(seen), RelayPolicy(batch_size=4))

    assert await relay_.drain() == 15
    assert await relay_.drain() == 0  # nothing is delivered twice

    assert sorted(seen) == sorted((event.key, event.n) for event in events)
    for key in ("a", "b", "c"):
        assert [n for k, n in seen if k == key] == [1, 2, 3, 4, 5]
    recorded = await rows(session_maker)
    assert {row.status for row in recorded} == {SENT}
    assert all(row.sent_at is not None and row.attempts == 1 for row in recorded)


async def test_a_failing_handler_backs_off_blocks_nobody_else_and_is_dead_lettered(
    session_maker: SessionMaker,
) -> None:
    await publish(
        session_maker,
        Pinged(key="bad", n=1),
        Pinged(key="good", n=1),
        Pinged(key="bad", n=2),
        Pinged(key="good", n=2),
    )
    broken = {"bad"}
    seen: list[tuple[str, int]] = []
    policy = RelayPolicy(max_attempts=3, retry_base_seconds=60, retry_max_seconds=600)
    relay_ = OutboxRelay(session_maker, recording(seen, lambda e: e.key in broken), policy)

    failed_at = datetime.now(UTC)
    await relay_.drain()
    # The retry time is taken when the delivery fails, somewhere within the run.
    runs = [datetime.now(UTC) - failed_at]

    # The other aggregate went through; bad/2 waits behind bad/1, which waits for its retry.
    assert seen == [("good", 1), ("good", 2)]
    first = (await rows(session_maker))[0]
    assert (first.status, first.attempts) == (PENDING, 1)
    assert first.available_at >= failed_at + timedelta(seconds=30)
    assert first.last_error is not None
    assert "cannot handle bad/1" in first.last_error
    assert await relay_.drain() == 0  # not due yet: the backoff is honoured

    waits = [first.available_at - failed_at]
    while (row := (await rows(session_maker))[0]).status != DEAD:
        await make_due(session_maker, row)  # time passes
        failed_at = datetime.now(UTC)
        await relay_.run_once()  # one batch: bad/2 stays behind bad/1 within it
        runs.append(datetime.now(UTC) - failed_at)
        waits.append((await rows(session_maker))[0].available_at - failed_at)
    # Dead after max_attempts; each retry waited for a jittered, doubling delay.
    assert len(waits) == 3
    assert timedelta(seconds=30) <= waits[0] <= timedelta(seconds=60) + runs[0]
    assert timedelta(seconds=60) <= waits[1] <= timedelta(seconds=120) + runs[1]

    # A dead letter no longer holds its aggregate back.
    broken.clear()
    await relay_.drain()
    assert seen[-1] == ("bad", 2)

    async with unit_of_work(session_maker) as uow:
        kicks: list[str] = []
        admin = OutboxService(uow, OutboxRepository(uow.session), lambda: kicks.append("kick"))
        page = await admin.list_dead(PageParams())
        assert [(event.payload, event.attempts) for event in page.items] == [
            ({"key": "bad", "n": 1}, 3)
        ]
        await admin.redrive(page.items[0].event_id)
    assert kicks == ["kick"]
    await relay_.drain()

    assert seen[-1] == ("bad", 1)
    assert {row.status for row in await rows(session_maker)} == {SENT}


async def test_redriving_needs_a_dead_letter(session_maker: SessionMaker) -> None:
    event = Pinged(key="a", n=1)
    await publish(session_maker, event)
    async with unit_of_work(session_maker) as uow:
        admin = OutboxService(uow, OutboxRepository(uow.session), lambda: None)
        with pytest.raises(ConflictError):
            await admin.redrive(event.event_id)
        with pytest.raises(NotFoundError):
            await admin.redrive(Pinged(key="b", n=1).event_id)


@pytest.mark.usefixtures("engine")  # starts from an empty outbox
async def test_two_relays_never_deliver_one_event_twice_at_once(database_url: str) -> None:
    engines = [create_engine(database_url, pool_size=2) for _ in range(2)]
    try:
        makers = [create_session_maker(engine) for engine in engines]
        events = [Pinged(key=f"k{n % 10}", n=n) for n in range(200)]
        await publish(makers[0], *events)
        in_flight: set[str] = set()
        overlaps: list[str] = []
        seen: list[tuple[str, int]] = []

        async def handle(uow: UnitOfWork, event: Event) -> None:
            assert isinstance(event, Pinged)
            key = str(event.event_id)
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            await asyncio.sleep(0.001)  # let the other relay run meanwhile
            in_flight.discard(key)
            seen.append((event.key, event.n))

        handlers = {Pinged.name: [Handler("tests.concurrent", handle)]}
        relays = [OutboxRelay(maker, handlers, RelayPolicy(batch_size=5)) for maker in makers]

        async def keep_draining(relay_: OutboxRelay) -> None:
            while len(seen) < len(events):
                await relay_.drain()
                await asyncio.sleep(0.01)

        async with asyncio.timeout(120):
            await asyncio.gather(*(keep_draining(relay_) for relay_ in relays))

        assert overlaps == []
        assert sorted(seen) == sorted((event.key, event.n) for event in events)
        for key in {event.key for event in events}:
            numbers = [n for k, n in seen if k == key]
            assert numbers == sorted(numbers)
    finally:
        for engine in engines:
            await engine.dispose()


async def effects(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count: int = (await connection.execute(text("SELECT count(*) FROM relay_effects"))).one()[0]
        return count


@pytest.mark.slow
async def test_a_relay_killed_before_marking_delivers_again_and_the_effect_happens_once(
    database_url: str, engine: AsyncEngine, session_maker: SessionMaker
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE IF NOT EXISTS relay_effects (event_id uuid NOT NULL)")
        )
        await connection.execute(text("DELETE FROM relay_effects"))
    event = Shipped(order_id="o-1")
    await publish(session_maker, event)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.services.outbox_relay_worker",
        database_url,
        cwd=PROJECT_ROOT,
    )
    assert await process.wait() == -9  # killed by its own handler, after the effect committed

    [row] = await rows(session_maker)
    assert (row.status, row.sent_at) == (PENDING, None)  # never marked
    assert await effects(engine) == 1
    async with session_maker() as session:
        processed = await session.scalar(text("SELECT count(*) FROM processed_events"))
    assert processed == 1

    # The next relay finds the event due again (the dead relay's lock went with its
    # connection), delivers it, and the handler's processed-events record skips the effect.
    assert await relay(session_maker, die_after_effect=False).drain() == 1

    [row] = await rows(session_maker)
    assert row.status == SENT
    assert await effects(engine) == 1
    async with session_maker() as session:
        handlers = await session.scalars(text("SELECT handler FROM processed_events"))
        assert list(handlers) == [HANDLER]
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 1


def test_the_retry_delay_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RelayPolicy(retry_base_seconds=2, retry_max_seconds=60)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (20, 60)]:
        delays = {policy.retry_delay(attempts).total_seconds() for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered


async def test_purging_removes_only_events_delivered_before_the_retention(
    session_maker: SessionMaker,
) -> None:
    old, recent, dead = Pinged(key="a", n=1), Pinged(key="b", n=1), Pinged(key="c", n=1)
    await publish(session_maker, old, recent, dead)
    seen: list[tuple[str, int]] = []
    relay_ = OutboxRelay(session_maker, recording(seen, lambda e: e.key == "c"), RelayPolicy())
    await relay_.drain()
    async with session_maker() as session, session.begin():
        await session.execute(
            text("UPDATE outbox SET sent_at = now() - interval '2 days' WHERE event_id = :id"),
            {"id": old.event_id},
        )
        await session.execute(
            text("UPDATE outbox SET status = 'dead', sent_at = NULL WHERE event_id = :id"),
            {"id": dead.event_id},
        )

    assert await relay_.purge_sent(timedelta(days=1)) == 1

    assert [row.event_id for row in await rows(session_maker)] == [recent.event_id, dead.event_id]
    async with session_maker() as session:
        processed = await session.scalars(text("SELECT event_id FROM processed_events"))
        assert set(processed) == {recent.event_id}


async def test_on_sqlite_the_development_default_a_batch_is_delivered_too(tmp_path: Path) -> None:
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/dev.db", redis_url=None)
    await migrate.upgrade(settings)
    engine = create_engine(settings.database_url)
    try:
        session_maker = create_session_maker(engine)
        events = [Pinged(key=key, n=n) for n in (1, 2) for key in ("a", "b", "c")]
        await publish(session_maker, *events)
        seen: list[tuple[str, int]] = []

        async with asyncio.timeout(60):  # a writer waiting on another would stall for 30 s each
            assert await OutboxRelay(session_maker, recording(seen), RelayPolicy()).drain() == 6

        assert sorted(seen) == sorted((event.key, event.n) for event in events)
        assert {row.status for row in await rows(session_maker)} == {SENT}
    finally:
        await engine.dispose()
