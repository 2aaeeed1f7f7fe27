"""The `users` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, true
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base, Timestamps, UUIDPrimaryKey
from {{ cookiecutter.project_slug }}.models.types import EncryptedString


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"

    # Stored lower-cased by the service, so the unique constraint is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), nullable=False, server_default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    welcome_email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Personal data, encrypted at rest (ENCRYPTION_KEYS); `db reencrypt` moves it to a new key.
    phone: Mapped[str | None] = mapped_column(EncryptedString())

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
