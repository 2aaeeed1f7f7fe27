"""Item payloads."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.schemas.base import Omittable, RequestModel, Text, UtcDatetime

# One definition per column, so a create and an update can never disagree on its limits.
Title = Annotated[Text, Field(min_length=1, max_length=200)]
Description = Annotated[Text, Field(max_length=10_000)]


class ItemCreate(RequestModel):
    title: Title
    description: Description | None = None


class ItemUpdate(RequestModel):
    # `title` cannot be NULL in the table: leaving it out keeps it, `null` is refused.
    title: Omittable[Title] = None
    description: Description | None = None


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str | None
    version: int
    processed_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
