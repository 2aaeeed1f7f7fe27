"""Outbox events as admins see them."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from {{ cookiecutter.project_slug }}.schemas.base import UtcDatetime


class OutboxEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: uuid.UUID
    name: str
    aggregate: str
    payload: dict[str, JsonValue]
    occurred_at: UtcDatetime
    request_id: str | None
    actor_id: uuid.UUID | None
    status: Literal["pending", "sent", "dead"]
    attempts: int
    available_at: UtcDatetime
    last_error: str | None
    sent_at: UtcDatetime | None
