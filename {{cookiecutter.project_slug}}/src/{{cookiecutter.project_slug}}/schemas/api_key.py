"""API key payloads: the secret appears in `ApiKeyCreated` only, once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.schemas.base import RequestModel, Text, UtcDatetime


class ApiKeyCreate(RequestModel):
    name: Text = Field(min_length=1, max_length=100)
    """What the key is for, so its owner can tell keys apart."""
    scopes: list[Permission] = Field(min_length=1, max_length=len(Permission))
    """Permissions the key grants; each must be one its owner holds."""
    expires_at: AwareDatetime | None = None
    """When the key stops working (with its UTC offset); never, when left out."""

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        try:
            return value.astimezone(UTC) if value is not None else None
        except OverflowError:  # year 9999 with a negative offset is past year 9999 in UTC
            raise ValueError("out of range") from None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    """The key's public start (`{prefix}_{key_id}`), to recognise it; never the secret."""
    scopes: list[str]
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    expires_at: UtcDatetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str
    """The whole key. Shown this once: only a hash of it is kept."""
