"""Dependency aliases: one `Annotated` name per injectable, used by every router.

Everything comes from the composition root the lifespan put on the request state. Every provider
is `async def`: a plain `def` dependency would cost a thread-pool hop on each request. The unit
of work uses `scope="function"`, so its commit happens before the response is sent: a failed
commit reaches the client as an error, never as a 200 with nothing saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request, params
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from {{ cookiecutter.project_slug }}.container import Container
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError, PermissionDeniedError
from {{ cookiecutter.project_slug }}.core.permissions import Permission, permissions_of
from {{ cookiecutter.project_slug }}.core.rate_limit import RouteLimit
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.middleware.auth import credentials_of
from {{ cookiecutter.project_slug }}.middleware.rate_limit import known_revocation
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.api_key import ApiKeyService
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.auth import AuthService
from {{ cookiecutter.project_slug }}.services.feature_flag import FeatureFlags
from {{ cookiecutter.project_slug }}.services.idempotency import IdempotencyService
from {{ cookiecutter.project_slug }}.services.item import ItemService
from {{ cookiecutter.project_slug }}.services.outbox import OutboxService
from {{ cookiecutter.project_slug }}.services.upstream import UpstreamService
from {{ cookiecutter.project_slug }}.services.user import UserService

S = TypeVar("S")


async def get_container(request: Request) -> Container:
    return cast(Container, request.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


# Requests that by HTTP's rules change nothing; they read without a transaction.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_uow(container: ContainerDep, request: Request) -> AsyncIterator[UnitOfWork]:
    async with container.unit_of_work(read_only=request.method in READ_ONLY_METHODS) as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def service(
    factory: Callable[[Container, UnitOfWork], S],
) -> Callable[[Container, UnitOfWork], Coroutine[Any, Any, S]]:
    """A dependency that builds a service with the container's factory, in the request's unit
    of work."""

    async def provide(container: ContainerDep, uow: UnitOfWorkDep) -> S:
        return factory(container, uow)

    return provide


def rate_limit(spec: str) -> params.Depends:
    """A route's own rate limit instead of the default one: `dependencies=[rate_limit("5/hour")]`.

    The rate-limit middleware reads it from the matched route and checks it before the route
    runs, in the same single store call as any other limit.
    """
    return params.Depends(RouteLimit(spec))


UserServiceDep = Annotated[UserService, Depends(service(Container.users))]
AuthServiceDep = Annotated[AuthService, Depends(service(Container.auth))]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(service(Container.api_keys))]
IdempotencyServiceDep = Annotated[IdempotencyService, Depends(service(Container.idempotency))]
ItemServiceDep = Annotated[ItemService, Depends(service(Container.items))]
OutboxServiceDep = Annotated[OutboxService, Depends(service(Container.outbox))]
AuditLogDep = Annotated[AuditLog, Depends(service(Container.audit))]
FeatureFlagsDep = Annotated[FeatureFlags, Depends(service(Container.flags))]


async def get_upstream_service(container: ContainerDep) -> UpstreamService:
    # No unit of work: an outbound call should not hold a database connection while it waits.
    return container.upstream_status()


UpstreamServiceDep = Annotated[UpstreamService, Depends(get_upstream_service)]

# auto_error=False: a missing token must become our 401 problem, not FastAPI's plain error.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the request acts for, and what it may do there."""

    user: User
    permissions: frozenset[Permission]
    """The role's permissions; for an API key, narrowed to the key's scopes."""
    via_api_key: bool


async def get_caller(
    request: Request,
    # Declare the schemes in OpenAPI; the middleware has already read the credentials.
    _token: Annotated[str | None, Depends(oauth2_scheme)],
    _key: Annotated[str | None, Depends(api_key_scheme)],
    container: ContainerDep,
    uow: UnitOfWorkDep,
) -> Caller:
    """The caller a valid access token or API key names; 401 otherwise."""
    # Only the service the credential needs is built: as two dependencies, the token and the
    # key services were both built (and solved) on every authenticated request.
    credentials = credentials_of(request.scope)
    if credentials.api_key is not None:
        grant = await container.api_keys(uow).authenticate(credentials.api_key.key)
        return Caller(grant.user, grant.permissions, via_api_key=True)
    if credentials.principal is None:
        if credentials.token_presented:
            raise AuthenticationError("the token is invalid or has expired", reason="invalid_token")
        raise AuthenticationError(
            "send a bearer token in the Authorization header, or an API key in X-API-Key",
            reason="missing_token",
        )
    # The rate-limit middleware usually asked the token store already, in its own round trip.
    user = await container.auth(uow).user_from_claims(
        credentials.principal.claims, revoked=known_revocation(request.scope)
    )
    return Caller(user, permissions_of(user.role), via_api_key=False)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_current_user(caller: CallerDep) -> User:
    return caller.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_permissions(caller: CallerDep) -> frozenset[Permission]:
    return caller.permissions


PermissionsDep = Annotated[frozenset[Permission], Depends(get_permissions)]


async def get_session_user(caller: CallerDep) -> User:
    """The signed-in user, refusing API keys: managing the account or its keys needs a login,
    so a leaked key cannot mint more keys or change the password."""
    if caller.via_api_key:
        raise PermissionDeniedError("this operation needs a signed-in session, not an API key")
    return caller.user


SessionUser = Annotated[User, Depends(get_session_user)]
