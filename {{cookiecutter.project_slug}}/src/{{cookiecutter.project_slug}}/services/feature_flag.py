"""Feature flags: the service-level check, and the admin's view and changes.

`is_enabled` reads the process's cached snapshot (`core/feature_flags.py`), so checking a flag
costs no query while the cache is fresh. A change invalidates this process's cache once it has
committed; other processes pick it up within FEATURE_FLAG_CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from {{ cookiecutter.project_slug }}.core.feature_flags import BUCKETS, FlagCache, FlagRule
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.feature_flag import FeatureFlag
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.feature_flag import FeatureFlagRepository
from {{ cookiecutter.project_slug }}.schemas.feature_flag import FeatureFlagRead, FeatureFlagUpdate
from {{ cookiecutter.project_slug }}.services.audit import AuditLog

_PERCENT = BUCKETS // 100


def _read(flag: FeatureFlag) -> FeatureFlagRead:
    return FeatureFlagRead(
        name=flag.name,
        description=flag.description,
        enabled=flag.enabled,
        rollout_percentage=flag.rollout_basis_points / _PERCENT,
        allowed_user_ids=[uuid.UUID(user_id) for user_id in flag.allowed_user_ids],
        updated_at=flag.updated_at,
    )


class FeatureFlags:
    def __init__(
        self,
        uow: UnitOfWork,
        flags: FeatureFlagRepository,
        cache: FlagCache,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._flags = flags
        self._cache = cache
        self._audit = audit

    async def is_enabled(self, name: str, user: User | None = None) -> bool:
        """Whether `user` (or an anonymous caller) gets the feature; unknown flags are off."""
        return await self.is_enabled_for(name, user.id if user is not None else None)

    async def is_enabled_for(self, name: str, user_id: uuid.UUID | None) -> bool:
        rule = (await self._cache.rules(self._load)).get(name)
        return rule is not None and rule.applies_to(user_id)

    async def _load(self) -> Mapping[str, FlagRule]:
        return {
            flag.name: FlagRule(
                name=flag.name,
                enabled=flag.enabled,
                rollout_basis_points=flag.rollout_basis_points,
                allowed_user_ids=frozenset(flag.allowed_user_ids),
            )
            for flag in await self._flags.list_all()
        }

    async def list_all(self) -> list[FeatureFlagRead]:
        return [_read(flag) for flag in await self._flags.list_all()]

    async def set(self, actor: User, name: str, data: FeatureFlagUpdate) -> FeatureFlagRead:
        """Create or change a flag; fields left out keep their value."""
        changes = data.model_dump(exclude_unset=True, mode="json")
        flag = await self._flags.get(name)
        if flag is None:
            flag = FeatureFlag(name=name, enabled=False, rollout_basis_points=0)
            flag.allowed_user_ids = []
            await self._flags.add(flag, conflict=f"flag {name} was created concurrently; retry")
        if "description" in changes:
            flag.description = data.description
        if data.enabled is not None:
            flag.enabled = data.enabled
        if data.rollout_percentage is not None:
            flag.rollout_basis_points = round(data.rollout_percentage * _PERCENT)
        if data.allowed_user_ids is not None:
            # Sorted and unique, so the stored list (and the audit entry) is stable.
            flag.allowed_user_ids = sorted({str(user_id) for user_id in data.allowed_user_ids})
        await self._flags.flush()
        await self._flags.refresh(flag)
        self._audit.record(
            "feature_flag.update",
            actor=actor.id,
            resource="feature_flag",
            resource_id=name,
            changes=changes,
        )
        self._uow.after_commit(self._cache.invalidate)
        return _read(flag)
