"""Item payloads."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.schemas.base import Omittable, RequestModel, Text, UtcDatetime
from {{ cookiecutter.project_slug }}.schemas.pagination import ListParams

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


ITEM_SORT_FIELDS = ("created_at", "updated_at", "title")


class ItemListParams(ListParams):
    """Pagination, sort and filters of `GET /items`, as one query-parameter model."""

    sort_fields: ClassVar[tuple[str, ...]] = ITEM_SORT_FIELDS
    default_sort: ClassVar[str] = "-created_at"

    q: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Only items whose title contains this text (any case)."
    )
    created_after: UtcDatetime | None = Field(
        default=None, description="Only items created after this instant (exclusive)."
    )
    created_before: UtcDatetime | None = Field(
        default=None, description="Only items created before this instant (exclusive)."
    )
    owner_id: uuid.UUID | None = Field(
        default=None,
        description="Only this owner's items. Admins only; others may pass only their own id.",
    )
