"""Feature-flag payloads. The rollout is shown in percent; it is stored in 1/100 of a percent."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from {{ cookiecutter.project_slug }}.schemas.base import Omittable, RequestModel, Text, UtcDatetime

FlagName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
"""Lower-case letters, digits, `_`, `.` and `-`: names appear in code and URLs."""
# Rounded to the nearest 0.01 %, the rollout's granularity.
Percentage = Annotated[float, Field(ge=0, le=100)]


class FeatureFlagRead(BaseModel):
    name: str
    description: str | None
    enabled: bool
    rollout_percentage: float
    allowed_user_ids: list[uuid.UUID]
    updated_at: UtcDatetime


class FeatureFlagUpdate(RequestModel):
    """Creates the flag when it does not exist (off, 0 %, nobody targeted unless given)."""

    description: Text | None = Field(default=None, max_length=1000)
    enabled: Omittable[bool] = None
    rollout_percentage: Omittable[Percentage] = None
    allowed_user_ids: Omittable[list[uuid.UUID]] = Field(default=None, max_length=10_000)
