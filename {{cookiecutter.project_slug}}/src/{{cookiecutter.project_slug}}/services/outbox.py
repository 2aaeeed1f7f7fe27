"""The transactional outbox: events recorded with the change, delivered after the commit.

`OutboxPublisher` is the services' `EventPublisher`: it writes the event in the unit of work's
transaction, so a rolled-back change publishes nothing. `OutboxRelay` delivers committed events
to their handlers at least once, in order per aggregate, retrying a failing handler with backoff
and dead-lettering the event after `max_attempts`. Each handler runs in a unit of work of its own
that also records (event, handler) in `processed_events`, so a redelivery takes effect once.
With tracing on, an event keeps the trace context it was recorded in and each handler run
continues that trace, whichever process or relay run delivers it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from {{ cookiecutter.project_slug }}.core.errors import ConflictError, NotFoundError
from {{ cookiecutter.project_slug }}.core.events import UNTRACED, Event, EventTracing
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.session import SessionMaker, UnitOfWork, unit_of_work
from {{ cookiecutter.project_slug }}.models.outbox import DEAD, OutboxEvent
from {{ cookiecutter.project_slug }}.repositories.outbox import OutboxRepository, event_of
from {{ cookiecutter.project_slug }}.schemas.outbox import OutboxEventRead
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams

log = get_logger(__name__)

# Asks a relay to run soon; called after a commit that recorded events. Never blocks for long.
Kick = Callable[[], object]


@dataclass(frozen=True, slots=True)
class Handler:
    """A named reaction to one event type; the name keys its processed-events records."""

    name: str
    handle: Callable[[UnitOfWork, Event], Awaitable[None]]


class OutboxPublisher:
    """Records events in the unit of work's transaction and kicks the relay once it commits."""

    def __init__(self, uow: UnitOfWork, kick: Kick, tracing: EventTracing = UNTRACED) -> None:
        self._uow = uow
        self._outbox = OutboxRepository(uow.session)
        self._kick = kick
        self._tracing = tracing
        self._kicked = False

    async def publish(self, event: Event) -> None:
        await self._outbox.add(event, trace_context=self._tracing.capture())
        if not self._kicked:
            self._kicked = True
            self._uow.after_commit(self._kick)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPolicy:
    batch_size: int = 100
    max_attempts: int = 10
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff with full jitter after `attempts` failed deliveries.

        Computed here rather than with tenacity: the wait is stored on the row for a later relay
        run to honour, not slept by the process that failed.
        """
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - not crypto


class OutboxRelay:
    """Delivers due outbox events to their handlers; safe to run in many processes at once."""

    def __init__(
        self,
        session_maker: SessionMaker,
        handlers: Mapping[str, Sequence[Handler]],
        policy: RelayPolicy,
        tracing: EventTracing = UNTRACED,
    ) -> None:
        self._session_maker = session_maker
        self._handlers = handlers
        self._policy = policy
        self._tracing = tracing

    async def run_once(self) -> int:
        """Deliver one batch; returns how many events it tried."""
        async with unit_of_work(self._session_maker) as uow:
            outbox = OutboxRepository(uow.session)
            # The rows stay locked until this transaction ends: if this process dies before
            # marking them, the locks go with its connection and another run delivers again.
            rows = await outbox.claim_due(self._policy.batch_size)
            # Deliver first, mark after: this transaction writes nothing while handlers write in
            # theirs (SQLite, the development default, allows one writer at a time).
            errors = [await self._deliver(row) for row in rows]
            for row, error in zip(rows, errors, strict=True):
                if error is None:
                    await outbox.mark_sent(row)
                    continue
                attempts = row.attempts + 1
                dead = attempts >= self._policy.max_attempts
                retry_at = datetime.now(UTC) + self._policy.retry_delay(attempts)
                await outbox.mark_failed(row, error, retry_at=retry_at, dead=dead)
                log.warning(
                    "event dead-lettered" if dead else "event delivery failed, will retry",
                    event_id=str(row.event_id),
                    event_name=row.name,
                    attempts=attempts,
                    error=error,
                )
        return len(rows)

    async def drain(self, max_batches: int = 100) -> int:
        """Deliver batches until none is due (or `max_batches`); returns the events tried.

        A batch holds at most one event per aggregate (the oldest pending), so an aggregate's
        next event waits for the next batch: the price of delivering them in order.
        """
        total = 0
        for _ in range(max_batches):
            tried = await self.run_once()
            if tried == 0:
                break
            total += tried
        return total

    async def _deliver(self, row: OutboxEvent) -> str | None:
        """Run every handler of the event; a description of the failures, or None."""
        event = event_of(row)
        if event is None:
            return f"no event class is named {row.name!r}"
        failures: list[str] = []
        # One handler failing does not stop the others; those done are skipped on retry.
        for handler in self._handlers.get(row.name, ()):
            try:
                with self._tracing.handling(handler.name, event, row.trace_context):
                    async with unit_of_work(self._session_maker) as uow:
                        first = await OutboxRepository(uow.session).record_processed(
                            event.event_id, handler.name
                        )
                        if first:
                            await handler.handle(uow, event)
            except Exception as exc:
                failures.append(f"{handler.name}: {exc!r}")
        return "; ".join(failures) or None

    async def purge_sent(self, older_than: timedelta) -> int:
        """Delete events delivered more than `older_than` ago."""
        async with unit_of_work(self._session_maker) as uow:
            return await OutboxRepository(uow.session).purge_sent(datetime.now(UTC) - older_than)


class RelayLoop:
    """Runs a relay in this process: every `interval` seconds, and soon after each kick."""

    def __init__(self, relay: OutboxRelay, interval: float) -> None:
        self._relay = relay
        self._interval = interval
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def kick(self) -> None:
        """Thread-safe: after-commit callbacks run in worker threads."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the loop in the background for the duration of the block."""
        task = asyncio.create_task(self.run(), name="outbox-relay")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                await self._relay.drain()
            except Exception:
                log.exception("outbox relay run failed")
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()


class OutboxService:
    """Admin use cases: see dead-lettered events and send one through again."""

    def __init__(self, uow: UnitOfWork, outbox: OutboxRepository, kick: Kick) -> None:
        self._uow = uow
        self._outbox = outbox
        self._kick = kick

    async def list_dead(self, params: PageParams) -> Page[OutboxEventRead]:
        rows, total = await self._outbox.list_dead(offset=params.offset, limit=params.page_size)
        return Page[OutboxEventRead].build(
            [OutboxEventRead.model_validate(row) for row in rows], total=total, params=params
        )

    async def redrive(self, event_id: uuid.UUID) -> OutboxEvent:
        row = await self._outbox.get(event_id)
        if row is None:
            raise NotFoundError(f"event {event_id} does not exist")
        if row.status != DEAD:
            raise ConflictError(f"event {event_id} is {row.status}, not dead-lettered")
        await self._outbox.redrive(row)
        self._uow.after_commit(self._kick)
        return row
