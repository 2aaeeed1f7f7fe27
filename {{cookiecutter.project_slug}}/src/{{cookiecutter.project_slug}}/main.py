"""Application factory: `create_app(settings)` builds the app; its lifespan owns the container.

Nothing connects at import time. The lifespan builds the composition root (`container.py`) and
puts it on the request state, so each app instance (and each test) has its own resources,
closed when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypedDict, cast

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope

from {{ cookiecutter.project_slug }}.api import docs, health, problem_pages, v1
from {{ cookiecutter.project_slug }}.api.metrics import (
    http_metrics,
    require_metrics_access,
)
from {{ cookiecutter.project_slug }}.api.openapi import install_problem_schemas
from {{ cookiecutter.project_slug }}.api.problems import (
    handle_app_error,
    handle_database_error,
    handle_http_exception,
    handle_validation_error,
)
from {{ cookiecutter.project_slug }}.container import Container, build_container
from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver
from {{ cookiecutter.project_slug }}.core.config import Settings, get_settings
from {{ cookiecutter.project_slug }}.core.errors import AppError
from {{ cookiecutter.project_slug }}.core.logging import configure_logging, get_logger
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    InMemoryRateLimitStore,
    RateLimiter,
    parse_rules,
)
from {{ cookiecutter.project_slug }}.core.telemetry import instrument_app
from {{ cookiecutter.project_slug }}.middleware.auth import AuthPrincipalMiddleware, credentials_of
from {{ cookiecutter.project_slug }}.middleware.body_limit import BodySizeLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.errors import (
    DATABASE_ERRORS,
    ErrorHandlerMiddleware,
)
from {{ cookiecutter.project_slug }}.middleware.rate_limit import RateLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware
from {{ cookiecutter.project_slug }}.middleware.routes import flat_routes
from {{ cookiecutter.project_slug }}.middleware.security_headers import SecurityHeadersMiddleware
from {{ cookiecutter.project_slug }}.middleware.timeout import TimeoutMiddleware

log = get_logger(__name__)

QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})

ContainerFactory = Callable[[Settings], AbstractAsyncContextManager[Container]]


class AppState(TypedDict):
    """What every request sees as `request.state`."""

    container: Container


def rate_limiter_of(scope: Scope) -> RateLimiter:
    """The limiter of the container the lifespan built (the middleware exists before it)."""
    return cast(Container, scope["state"]["container"]).rate_limiter


def revocation_key_of(scope: Scope) -> str | None:
    """The token store's key for the caller's access token, checked with the rate limit."""
    principal = credentials_of(scope).principal
    if principal is None:
        return None
    container = cast(Container, scope["state"]["container"])
    return container.tokens.revocation_key(principal.claims.token_id)


def create_app(
    settings: Settings | None = None, *, container_factory: ContainerFactory = build_container
) -> FastAPI:
    """The ASGI app; `container_factory` lets tests build the container their own way."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        async with container_factory(settings) as container:
            log.info(
                "started",
                environment=settings.environment,
                database=container.engine.url.get_backend_name(),
            )
            if isinstance(container.rate_limiter.store, InMemoryRateLimitStore):
                log.warning(
                    "rate limits are per process",
                    detail="no REDIS_URL: each worker process admits up to the full limit",
                )
            yield AppState(container=container)
        log.info("stopped")

    app = FastAPI(
        title=settings.project_name,
        version="{{ cookiecutter.version }}",
        description="{{ cookiecutter.description }}",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py, which escapes the title
        redoc_url=None,
        openapi_url="/openapi.json" if settings.show_docs else None,
    )
    app.state.problem_type_base = settings.problem_type_base_url
    app.include_router(health.router)
    app.include_router(problem_pages.router)
    if settings.show_docs:
        app.include_router(docs.router)
    app.include_router(v1.router)
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    for error_type in DATABASE_ERRORS:
        app.add_exception_handler(error_type, handle_database_error)
    install_problem_schemas(app)

    # add_middleware wraps the app built so far, so the last one added runs first. Resulting
    # order, outside in: request context -> metrics -> errors -> security headers -> CORS ->
    # body-size limit -> auth principal -> rate limit -> timeout -> gzip.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=rate_limiter_of,
        default_rules=parse_rules(settings.rate_limit_default, "default"),
        # The stricter auth rules replace the default ones under their prefix.
        path_rules={"/api/v1/auth/": parse_rules(settings.rate_limit_auth, "auth")},
        client_addresses=ClientAddressResolver(settings.trusted_proxies),
        routes=lambda: flat_routes(app.router.routes),
        revocation_key=revocation_key_of,
    )
    app.add_middleware(
        AuthPrincipalMiddleware,
        secret_key=settings.jwt_verification_key,
        api_key_pepper=settings.api_key_pepper_bytes,
        algorithm=settings.jwt_algorithm,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "Retry-After"],
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    app.add_middleware(ErrorHandlerMiddleware)
    # The request-context middleware records the HTTP metrics; the instrumentator serves them.
    Instrumentator().expose(
        app, include_in_schema=False, dependencies=[Depends(require_metrics_access(settings))]
    )
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS, record=http_metrics())
    instrument_app(app)  # server spans around everything, when tracing is on
    return app
