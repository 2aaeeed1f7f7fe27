"""The `outbox` of recorded domain events, and `processed_events`, what each handler has done."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base

PENDING = "pending"
SENT = "sent"
DEAD = "dead"


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's two questions: what is due, and is an older event of this aggregate pending.
        Index("ix_outbox_status_available_at", "status", "available_at"),
        Index("ix_outbox_aggregate_id", "aggregate", "id"),
    )

    # A sequence, not a UUID: it orders the events of one aggregate.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    aggregate: Mapped[str] = mapped_column(String(200), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # W3C trace-context headers (`traceparent`, ...) of the span that recorded the event, so its
    # handlers run in the same trace; None when tracing is off.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # When the relay may try it (again): a failed delivery pushes it back.
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ProcessedEvent(Base):
    """One row per (event, handler) that has taken effect: a redelivery finds it and skips."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
