"""Application factory: `create_app(settings)` builds the app; `lifespan` owns its clients.

Nothing connects at import time. The engine, session maker and Redis client live on the lifespan
state, so each app instance (and each test) has its own, closed when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from prometheus_fastapi_instrumentator import Instrumentator
{%- if cookiecutter.use_redis == 'y' %}
from redis.asyncio import Redis
{%- endif %}
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from {{ cookiecutter.project_slug }}.api import health, v1
from {{ cookiecutter.project_slug }}.api.problems import (
    handle_app_error,
    handle_http_exception,
    handle_validation_error,
)
from {{ cookiecutter.project_slug }}.core.config import Settings, get_settings
from {{ cookiecutter.project_slug }}.core.errors import AppError
from {{ cookiecutter.project_slug }}.core.logging import configure_logging, get_logger
from {{ cookiecutter.project_slug }}.db.migrate import code_heads
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    create_engine,
    create_session_maker,
)
from {{ cookiecutter.project_slug }}.middleware.body_limit import BodySizeLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.errors import ErrorHandlerMiddleware
from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware
from {{ cookiecutter.project_slug }}.middleware.security_headers import SecurityHeadersMiddleware
{%- if cookiecutter.use_celery == 'y' %}
from {{ cookiecutter.project_slug }}.tasks.app import BrokerCheck, configure_celery
{%- endif %}

log = get_logger(__name__)

QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


class AppState(TypedDict):
    """What every request sees as `request.state`."""

    settings: Settings
    session_maker: SessionMaker
    migration_heads: frozenset[str]
{%- if cookiecutter.use_redis == 'y' %}
    redis: Redis | None
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
    broker_check: BrokerCheck | None
{%- endif %}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[AppState]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name="{{ cookiecutter.project_slug }}-api",
        )
{%- if cookiecutter.use_redis == 'y' %}
        # Connects lazily: the service starts (and reports not ready) while Redis is down.
        redis = (
            Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=1.0,
                socket_timeout=1.0,
                health_check_interval=30,
            )
            if settings.redis_url
            else None
        )
{%- endif %}
        try:
{%- if cookiecutter.use_celery == 'y' %}
            broker_check = configure_celery(settings)
{%- endif %}
            # Read once: readiness compares the database against the code's head revisions.
            migration_heads = await asyncio.to_thread(code_heads)
            log.info(
                "started", environment=settings.environment, database=engine.url.get_backend_name()
            )
            yield AppState(
                settings=settings,
                session_maker=create_session_maker(engine),
                migration_heads=migration_heads,
{%- if cookiecutter.use_redis == 'y' %}
                redis=redis,
{%- endif %}
{%- if cookiecutter.use_celery == 'y' %}
                broker_check=broker_check,
{%- endif %}
            )
        finally:
{%- if cookiecutter.use_redis == 'y' %}
            if redis is not None:
                await redis.aclose()
{%- endif %}
            await engine.dispose()
            log.info("stopped")

    app = FastAPI(
        title=settings.project_name,
        version="{{ cookiecutter.version }}",
        description="{{ cookiecutter.description }}",
        lifespan=lifespan,
        docs_url="/docs" if settings.show_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.show_docs else None,
    )
    app.include_router(health.router)
    app.include_router(v1.router)
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)

    # add_middleware wraps the app built so far, so the last one added runs first. Resulting
    # order, outside in: request context -> metrics -> errors -> security headers -> CORS ->
    # body-size limit -> gzip.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
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
    Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(
        app, include_in_schema=False
    )
    app.add_middleware(RequestContextMiddleware, quiet_paths=QUIET_PATHS)
    return app
