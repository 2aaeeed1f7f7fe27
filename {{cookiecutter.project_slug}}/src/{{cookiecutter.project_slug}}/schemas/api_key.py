"""API key payloads: the secret appears in `ApiKeyCreated` only, once."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.schemas.base import RequestModel, Text, UtcDatetime


class ApiKeyCreate(RequestModel):
    name: Text = Field(min_length=1, max_length=100)
    """What the key is for, so its owner can tell keys apart."""
    scopes: list[Permission] = Field(min_length=1, max_length=len(Permission))
    """Permissions the key grants; each must be one its owner holds."""
    expires_at: UtcDatetime | None = None
    """When the key stops working; never, when left out."""


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
