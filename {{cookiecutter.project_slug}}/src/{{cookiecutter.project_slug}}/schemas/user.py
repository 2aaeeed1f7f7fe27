"""User payloads."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from {{ cookiecutter.project_slug }}.core.permissions import Role
from {{ cookiecutter.project_slug }}.schemas.base import RequestModel, Text, UtcDatetime

# Digits with the usual separators and an optional leading `+`; stored encrypted.
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ().-]{2,31}$")]


class UserCreate(RequestModel):
    email: EmailStr
    password: Text = Field(min_length=1, max_length=1024)
    full_name: Text | None = Field(default=None, max_length=200)


class ProfileUpdate(RequestModel):
    """Changes to one's own account; a new e-mail needs the current password."""

    full_name: str | None = Field(default=None, max_length=200)
    phone: Phone | None = None
    """Encrypted at rest; `null` removes it."""
    email: EmailStr | None = None
    current_password: str | None = Field(default=None, min_length=1, max_length=1024)


class PasswordChange(RequestModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class AccountUpdate(RequestModel):
    """An admin's changes to any account."""

    role: Role | None = None
    is_active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    phone: str | None = None
    role: str
    is_active: bool
    welcome_email_sent_at: UtcDatetime | None
    created_at: UtcDatetime
