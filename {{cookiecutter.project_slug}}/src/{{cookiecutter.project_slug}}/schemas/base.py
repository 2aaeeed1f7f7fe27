"""Pieces every payload shares: strict request bodies, and timestamps that carry their offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body. Unknown fields are refused with a 422 naming them, so a client's typo
    or a mass-assignment attempt (`"owner_id": ...`) is visible instead of silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without an offset; the API always answers in UTC with one.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
