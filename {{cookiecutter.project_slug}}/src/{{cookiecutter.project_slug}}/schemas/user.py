"""User payloads."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from {{ cookiecutter.project_slug }}.schemas.base import RequestModel, Text, UtcDatetime


class UserCreate(RequestModel):
    email: EmailStr
    password: Text = Field(min_length=1, max_length=1024)
    full_name: Text | None = Field(default=None, max_length=200)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: str
    is_active: bool
    welcome_email_sent_at: UtcDatetime | None
    created_at: UtcDatetime
