"""Queries on the outbox: recording events, claiming due ones for delivery, and their fate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import savepoint
from {{ cookiecutter.project_slug }}.models.outbox import (
    DEAD,
    PENDING,
    SENT,
    OutboxEvent,
    ProcessedEvent,
)


def event_of(row: OutboxEvent) -> Event | None:
    """The typed event a row records; None when no event class has its name any more."""
    event_type = Event.type_named(row.name)
    if event_type is None:
        return None
    return event_type.model_validate(
        {
            **row.payload,
            "event_id": row.event_id,
            "occurred_at": row.occurred_at,
            "request_id": row.request_id,
            "actor_id": row.actor_id,
        }
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: Event, trace_context: dict[str, str] | None = None) -> None:
        self.session.add(
            OutboxEvent(
                event_id=event.event_id,
                name=event.name,
                aggregate=event.aggregate_key,
                payload=event.payload(),
                occurred_at=event.occurred_at,
                request_id=event.request_id,
                actor_id=event.actor_id,
                trace_context=trace_context,
            )
        )
        await self.session.flush()

    async def claim_due(self, limit: int) -> Sequence[OutboxEvent]:
        """Lock up to `limit` due events, oldest first, for the rest of this transaction.

        An event is due when its aggregate has no older pending event (order per aggregate) and
        no other relay holds it: `SKIP LOCKED` lets relays run side by side without waiting for
        or delivering each other's events.
        """
        older = aliased(OutboxEvent)
        older_pending = exists().where(
            older.aggregate == OutboxEvent.aggregate,
            older.status == PENDING,
            older.id < OutboxEvent.id,
        )
        statement = (
            select(OutboxEvent)
            .where(
                OutboxEvent.status == PENDING,
                OutboxEvent.available_at <= datetime.now(UTC),
                ~older_pending,
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxEvent)
        )
        return (await self.session.scalars(statement)).all()

    async def mark_sent(self, row: OutboxEvent) -> None:
        row.status, row.sent_at, row.last_error = SENT, datetime.now(UTC), None
        row.attempts += 1
        await self.session.flush()

    async def mark_failed(
        self, row: OutboxEvent, error: str, *, retry_at: datetime, dead: bool
    ) -> None:
        row.attempts += 1
        row.last_error = error[:2000]
        row.available_at = retry_at
        if dead:
            row.status = DEAD
        await self.session.flush()

    async def get(self, event_id: uuid.UUID) -> OutboxEvent | None:
        return await self.session.scalar(
            select(OutboxEvent).where(OutboxEvent.event_id == event_id)
        )

    async def list_dead(self, *, offset: int, limit: int) -> tuple[Sequence[OutboxEvent], int]:
        total = await self.session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.status == DEAD)
        )
        rows = await self.session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.status == DEAD)
            .order_by(OutboxEvent.id)
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), total or 0

    async def redrive(self, row: OutboxEvent) -> None:
        """Back to pending with a fresh count of attempts, due at once."""
        row.status, row.attempts, row.available_at = PENDING, 0, datetime.now(UTC)
        await self.session.flush()

    async def record_processed(self, event_id: uuid.UUID, handler: str) -> bool:
        """Claim (event, handler) for this transaction; `False` when it already took effect.

        A concurrent claim of the same pair waits on the primary key until this transaction
        ends, then fails: two deliveries of one event never both take effect.
        """
        try:
            async with savepoint(self.session):
                self.session.add(ProcessedEvent(event_id=event_id, handler=handler))
        except IntegrityError:
            return False
        return True

    async def purge_sent(self, before: datetime) -> int:
        """Delete events sent before `before` and their processed-by records."""
        sent = select(OutboxEvent.event_id).where(
            OutboxEvent.status == SENT, OutboxEvent.sent_at < before
        )
        await self.session.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(sent)))
        result = await self.session.execute(
            delete(OutboxEvent).where(OutboxEvent.status == SENT, OutboxEvent.sent_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
