"""Dependency aliases: one `Annotated` name per injectable, used by every router.

The unit of work uses `scope="function"`, so its commit happens before the response is sent: a
failed commit reaches the client as an error, never as a 200 with nothing saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
{%- if cookiecutter.use_redis == 'y' %}
from redis.asyncio import Redis
{%- endif %}

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, PermissionDeniedError
from {{ cookiecutter.project_slug }}.db.session import SessionMaker, UnitOfWork, unit_of_work
from {{ cookiecutter.project_slug }}.models.user import User
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
{%- endif %}
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.services.auth import AuthService
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.services.item import ItemNotifier, ItemService
{%- endif %}
from {{ cookiecutter.project_slug }}.services.user import UserNotifier, UserService
{%- if cookiecutter.use_celery == 'y' %}
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.tasks.items import CeleryItemNotifier
{%- endif %}
from {{ cookiecutter.project_slug }}.tasks.users import CeleryUserNotifier
{%- endif %}


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    session_maker = cast(SessionMaker, request.state.session_maker)
    async with unit_of_work(session_maker) as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
{%- if cookiecutter.use_redis == 'y' %}


def get_redis(request: Request) -> Redis | None:
    return cast("Redis | None", request.state.redis)


RedisDep = Annotated["Redis | None", Depends(get_redis)]
{%- endif %}


def get_user_notifier() -> UserNotifier | None:
{%- if cookiecutter.use_celery == 'y' %}
    return CeleryUserNotifier()
{%- else %}
    return None
{%- endif %}


def get_user_service(
    uow: UnitOfWorkDep, notifier: Annotated[UserNotifier | None, Depends(get_user_notifier)]
) -> UserService:
    return UserService(uow, UserRepository(uow.session), notifier)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


def get_auth_service(users: UserServiceDep, settings: SettingsDep) -> AuthService:
    return AuthService(users, settings)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
{%- if cookiecutter.include_example_domain == 'y' %}


def get_item_notifier() -> ItemNotifier | None:
{%- if cookiecutter.use_celery == 'y' %}
    return CeleryItemNotifier()
{%- else %}
    return None
{%- endif %}


def get_item_service(
    uow: UnitOfWorkDep, notifier: Annotated[ItemNotifier | None, Depends(get_item_notifier)]
) -> ItemService:
    return ItemService(uow, ItemRepository(uow.session), notifier)


ItemServiceDep = Annotated[ItemService, Depends(get_item_service)]
{%- endif %}

# auto_error=False: a missing token must become our 401 problem, not FastAPI's plain error.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def get_current_user(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    auth: AuthServiceDep,
) -> User:
    if token is None:
        raise AuthenticationError("send a bearer token in the Authorization header")
    user = await auth.user_from_access_token(token)
    request.state.user_id = str(user.id)
    structlog.contextvars.bind_contextvars(user_id=str(user.id))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise PermissionDeniedError("this operation needs the admin role")
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]
