"""Dependency aliases: one `Annotated` name per injectable, used by every router.

Everything comes from the composition root the lifespan put on the request state. Every provider
is `async def`: a plain `def` dependency would cost a thread-pool hop on each request. The unit
of work uses `scope="function"`, so its commit happens before the response is sent: a failed
commit reaches the client as an error, never as a 200 with nothing saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request, params
from fastapi.security import OAuth2PasswordBearer

from {{ cookiecutter.project_slug }}.container import Container
from {{ cookiecutter.project_slug }}.core.errors import AuthenticationError
from {{ cookiecutter.project_slug }}.core.rate_limit import RouteLimit
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.middleware.auth import credentials_of
from {{ cookiecutter.project_slug }}.middleware.rate_limit import known_revocation
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.auth import AuthService
from {{ cookiecutter.project_slug }}.services.feature_flag import FeatureFlags
from {{ cookiecutter.project_slug }}.services.idempotency import IdempotencyService
from {{ cookiecutter.project_slug }}.services.item import ItemService
from {{ cookiecutter.project_slug }}.services.upstream import UpstreamService
from {{ cookiecutter.project_slug }}.services.user import UserService

S = TypeVar("S")


async def get_container(request: Request) -> Container:
    return cast(Container, request.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_uow(container: ContainerDep) -> AsyncIterator[UnitOfWork]:
    async with container.unit_of_work() as uow:
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
IdempotencyServiceDep = Annotated[IdempotencyService, Depends(service(Container.idempotency))]
ItemServiceDep = Annotated[ItemService, Depends(service(Container.items))]
AuditLogDep = Annotated[AuditLog, Depends(service(Container.audit))]
FeatureFlagsDep = Annotated[FeatureFlags, Depends(service(Container.flags))]


async def get_upstream_service(container: ContainerDep) -> UpstreamService:
    # No unit of work: an outbound call should not hold a database connection while it waits.
    return container.upstream_status()


UpstreamServiceDep = Annotated[UpstreamService, Depends(get_upstream_service)]

# auto_error=False: a missing token must become our 401 problem, not FastAPI's plain error.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def get_current_user(
    request: Request,
    # Declares the bearer scheme in OpenAPI; the token itself was decoded by the middleware.
    _: Annotated[str | None, Depends(oauth2_scheme)],
    auth: AuthServiceDep,
) -> User:
    credentials = credentials_of(request.scope)
    if credentials.principal is None:
        if credentials.token_presented:
            raise AuthenticationError("the token is invalid or has expired", reason="invalid_token")
        raise AuthenticationError(
            "send a bearer token in the Authorization header", reason="missing_token"
        )
    # The rate-limit middleware usually asked the token store already, in its own round trip.
    return await auth.user_from_claims(
        credentials.principal.claims, revoked=known_revocation(request.scope)
    )


CurrentUser = Annotated[User, Depends(get_current_user)]
