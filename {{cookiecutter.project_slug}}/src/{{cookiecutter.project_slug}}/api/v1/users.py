"""The signed-in user's account, and admin access to all accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from {{ cookiecutter.project_slug }}.api.deps import CurrentUser, UserServiceDep, rate_limit
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams
from {{ cookiecutter.project_slug }}.schemas.user import (
    AccountUpdate,
    PasswordChange,
    ProfileUpdate,
    UserRead,
)

router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401))

UsersAdmin = Annotated[User, Depends(require_permissions(Permission.USERS_ADMIN))]


@router.get("/me", response_model=UserRead)
async def get_me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user


@router.patch("/me", response_model=UserRead, responses=problem_responses(403, 409, 413, 422))
async def update_me(data: ProfileUpdate, user: CurrentUser, users: UserServiceDep) -> User:
    """Change one's name or e-mail; a new e-mail needs `current_password`."""
    return await users.update_profile(user, data)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 413, 422, 503),
    # Each attempt checks the current password: as strict as logging in.
    dependencies=[rate_limit("10/hour")],
)
async def change_password(
    data: PasswordChange, user: CurrentUser, users: UserServiceDep
) -> Response:
    """Set a new password; every refresh token of the account stops working."""
    await users.change_password(user, data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=Page[UserRead], responses=problem_responses(403, 422))
async def list_users(
    _: UsersAdmin, users: UserServiceDep, params: Annotated[PageParams, Query()]
) -> Page[UserRead]:
    """All accounts (`users:admin`)."""
    return await users.list_page(params)


@router.get("/{user_id}", response_model=UserRead, responses=problem_responses(403, 404, 422))
async def get_user(user_id: uuid.UUID, _: UsersAdmin, users: UserServiceDep) -> User:
    """One account (`users:admin`)."""
    return await users.get(user_id)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses=problem_responses(403, 404, 413, 422, 503),
)
async def update_user(
    user_id: uuid.UUID, data: AccountUpdate, admin: UsersAdmin, users: UserServiceDep
) -> User:
    """Set an account's role or active flag (`users:admin`); a deactivated account's tokens
    stop working at once."""
    return await users.update_account(admin, user_id, data)
