"""Queries on feature flags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from {{ cookiecutter.project_slug }}.models.feature_flag import FeatureFlag
from {{ cookiecutter.project_slug }}.repositories.base import Repository


class FeatureFlagRepository(Repository[FeatureFlag]):
    async def get(self, name: str) -> FeatureFlag | None:
        return await self.session.get(FeatureFlag, name)

    async def list_all(self) -> Sequence[FeatureFlag]:
        return (await self.session.scalars(select(FeatureFlag).order_by(FeatureFlag.name))).all()
