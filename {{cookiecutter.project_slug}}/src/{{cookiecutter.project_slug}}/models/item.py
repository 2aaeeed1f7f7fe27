"""The `items` table: the example domain, owned by a user."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base, Timestamps, UUIDPrimaryKey


class Item(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "items"
    # One index per sortable field, for an owner's items and for everyone's (admins), each
    # ending in `id` like the keyset order does (migration 0004_items_indexes).
    __table_args__ = (
        Index("ix_items_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_items_owner_id_updated_at_id", "owner_id", "updated_at", "id"),
        Index("ix_items_owner_id_title_id", "owner_id", "title", "id"),
        Index("ix_items_created_at_id", "created_at", "id"),
        Index("ix_items_updated_at_id", "updated_at", "id"),
        Index("ix_items_title_id", "title", "id"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    # Bumped on every update; becomes the ETag for optimistic concurrency.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
