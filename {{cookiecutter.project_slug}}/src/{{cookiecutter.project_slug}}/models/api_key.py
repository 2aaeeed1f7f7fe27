"""The `api_keys` table: one row per key, holding a hash of its secret, never the secret."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.core import api_keys
from {{ cookiecutter.project_slug }}.models.base import Base, Timestamps, UUIDPrimaryKey


class ApiKey(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "api_keys"

    # The public part of the key (`{prefix}_{key_id}.{secret}`): found by it, shown in lists.
    key_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # HMAC-SHA256 of the secret under the server's pepper (hex).
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # Permission names; the key may do what both these and its owner's role allow.
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def prefix(self) -> str:
        return f"{api_keys.PREFIX}_{self.key_id}"
