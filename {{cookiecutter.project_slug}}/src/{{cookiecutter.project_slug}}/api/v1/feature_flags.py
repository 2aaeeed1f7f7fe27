"""Feature flags, for administrators: list them, create or change one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from {{ cookiecutter.project_slug }}.api.deps import FeatureFlagsDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.feature_flag import (
    FeatureFlagRead,
    FeatureFlagUpdate,
    FlagName,
)

router = APIRouter(
    prefix="/feature-flags", tags=["feature flags"], responses=problem_responses(401, 403, 422)
)

UsersAdmin = Annotated[User, Depends(require_permissions(Permission.USERS_ADMIN))]


@router.get("", response_model=list[FeatureFlagRead])
async def list_feature_flags(_: UsersAdmin, flags: FeatureFlagsDep) -> list[FeatureFlagRead]:
    """Every flag and its targeting (`users:admin`)."""
    return await flags.list_all()


@router.put("/{name}", response_model=FeatureFlagRead, responses=problem_responses(409, 413))
async def set_feature_flag(
    name: Annotated[FlagName, Path()],
    data: FeatureFlagUpdate,
    admin: UsersAdmin,
    flags: FeatureFlagsDep,
) -> FeatureFlagRead:
    """Create or change a flag; fields left out keep their value (`users:admin`).

    This process applies the change at once; others within FEATURE_FLAG_CACHE_TTL_SECONDS.
    """
    return await flags.set(admin, name, data)
