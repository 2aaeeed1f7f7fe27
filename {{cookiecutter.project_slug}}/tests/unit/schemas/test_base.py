"""Payload rules every schema shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.schemas.user import UserCreate, UserRead


def read(created_at: datetime) -> UserRead:
    return UserRead(
        id=uuid.uuid4(),
        email="a@example.com",
        full_name=None,
        role="user",
        is_active=True,
        welcome_email_sent_at=None,
        created_at=created_at,
    )


def test_a_naive_timestamp_is_returned_as_utc_with_its_offset() -> None:
    # What SQLite gives back: no offset at all.
    user = read(datetime(2026, 12, 2, 0, 36, 3))  # noqa: DTZ001

    assert user.model_dump(mode="json")["created_at"] == "2026-12-02T00:36:03Z"


def test_an_aware_timestamp_is_converted_to_utc() -> None:
    user = read(datetime(2026, 12, 2, 1, 36, 3, tzinfo=timezone(timedelta(hours=1))))

    assert user.created_at == datetime(2026, 12, 2, 0, 36, 3, tzinfo=UTC)


def test_request_bodies_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="is_admin"):
        UserCreate.model_validate({"email": "a@example.com", "password": "pw", "is_admin": True})
