"""The signed-in user's account, and admin access to all accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from {{ cookiecutter.project_slug }}.api.deps import CurrentAdmin, CurrentUser, UserServiceDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams
from {{ cookiecutter.project_slug }}.schemas.user import UserRead

router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401))


@router.get("/me", response_model=UserRead)
async def get_me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user


@router.get("", response_model=Page[UserRead], responses=problem_responses(403, 422))
async def list_users(
    _: CurrentAdmin, users: UserServiceDep, params: Annotated[PageParams, Query()]
) -> Page[UserRead]:
    """All accounts (admin only)."""
    return await users.list_page(params)


@router.get("/{user_id}", response_model=UserRead, responses=problem_responses(403, 404, 422))
async def get_user(user_id: uuid.UUID, _: CurrentAdmin, users: UserServiceDep) -> User:
    """One account (admin only)."""
    return await users.get(user_id)
