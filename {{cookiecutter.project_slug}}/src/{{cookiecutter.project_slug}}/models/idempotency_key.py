"""The `idempotency_keys` table: a client's key for a POST and the response it got."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    # Keys are per user: two clients choosing the same key never see each other's responses.
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, path and canonical body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # Set in the transaction that claimed the key, so other transactions only ever see both.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
