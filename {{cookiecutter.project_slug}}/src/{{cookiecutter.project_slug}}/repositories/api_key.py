"""Queries on API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update

from {{ cookiecutter.project_slug }}.models.api_key import ApiKey
from {{ cookiecutter.project_slug }}.repositories.base import Repository


class ApiKeyRepository(Repository[ApiKey]):
    async def get_by_key_id(self, key_id: str) -> ApiKey | None:
        result = await self.session.execute(select(ApiKey).where(ApiKey.key_id == key_id))
        return result.scalar_one_or_none()

    async def get_owned(self, api_key_id: uuid.UUID, user_id: uuid.UUID) -> ApiKey | None:
        """A key of `user_id` that is not revoked."""
        result = await self.session.execute(
            select(ApiKey).where(
                ApiKey.id == api_key_id,
                ApiKey.user_id == user_id,
                ApiKey.revoked_at.is_(None),
            )
        )
        return result.scalar_one_or_none()

    async def list_active(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        query = (
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return (await self.session.scalars(query)).all()

    async def touch(self, api_key_id: uuid.UUID, *, now: datetime, not_since: datetime) -> None:
        """Set `last_used_at` unless it is already later than `not_since`: one conditional
        UPDATE, so concurrent requests with the same key write at most once per interval."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == api_key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < not_since),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
