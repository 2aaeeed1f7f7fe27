"""The `feature_flags` table: one row per flag, read through a short in-process cache."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base, Timestamps


class FeatureFlag(Timestamps, Base):
    __tablename__ = "feature_flags"
    __table_args__ = (
        CheckConstraint(
            "rollout_basis_points BETWEEN 0 AND 10000", name="rollout_basis_points_range"
        ),
    )

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Off means off for everyone, whatever the targeting below says.
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    # Share of users (in 1/100 of a percent) in the rollout; 10000 is everyone.
    rollout_basis_points: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # User ids (as strings) who get the feature whatever the rollout.
    allowed_user_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
