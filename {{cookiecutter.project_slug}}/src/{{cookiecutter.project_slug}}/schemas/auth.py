"""Authentication payloads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from {{ cookiecutter.project_slug }}.schemas.base import RequestModel, Text


class LoginRequest(RequestModel):
    email: EmailStr
    password: Text = Field(min_length=1, max_length=1024)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str | None
    """`null` in browser mode (AUTH_COOKIE_MODE), where it travels in an HttpOnly cookie."""
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int


class RefreshRequest(RequestModel):
    """The refresh token; in browser mode it comes from its cookie and the body is omitted."""

    refresh_token: str = Field(min_length=1, max_length=8192)
