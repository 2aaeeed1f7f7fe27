"""App variants for the per-layer breakdown: the stack built up one layer at a time.

Variant N has the first N+1 entries of LAYERS; one past the last is the service's own `create_app`.
Each is served in its own process by `python -m tests.bench serve-layers --layers N`, configured
from the environment like the service. The routes' annotations are imported at module level,
because FastAPI resolves them in this module's namespace.
"""

from __future__ import annotations

import os
{%- if cookiecutter.include_example_domain == 'y' %}
import uuid
{%- endif %}
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
{% if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.api.deps import CurrentUser, UnitOfWorkDep
{%- endif %}
from {{ cookiecutter.project_slug }}.core.config import Settings, load_settings
{%- if cookiecutter.include_example_domain == 'y' %}
from {{ cookiecutter.project_slug }}.models.item import Item
from tests.bench.bare import add_bare_routes, item_document
{%- else %}
from tests.bench.bare import add_bare_routes
{%- endif %}

LAYERS = (
    "bare",
    "+ gzip",
    "+ timeout",
    "+ rate limit",
    "+ auth principal",
    "+ body-size limit",
    "+ security headers",
    "+ error handler",
    "+ request context",
    "+ dependencies",
    "+ service, unit of work, response model",
    "+ logging at INFO",
    "+ metrics",
)
SERVICE = "service (create_app)"
VARIANTS = (*LAYERS, SERVICE)


def create_layered_app() -> FastAPI:
    """Reads BENCH_LAYERS (an index into VARIANTS) and the service's settings."""
    variant = VARIANTS[int(os.environ["BENCH_LAYERS"])]
    settings = load_settings()
    if variant == SERVICE:
        from {{ cookiecutter.project_slug }}.main import create_app

        return create_app(settings)
    return build_layered_app(settings, LAYERS[: LAYERS.index(variant) + 1])


def build_layered_app(settings: Settings, layers: tuple[str, ...]) -> FastAPI:
    """The service with only `layers`, assembled from its public parts as `main.py` does.

    This function is the only place that knows how the service is wired: keep it in step with
    `create_app` (same middleware order and arguments), so each row adds exactly one layer.
    """
    from fastapi.exceptions import RequestValidationError
    from prometheus_fastapi_instrumentator import Instrumentator
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.gzip import GZipMiddleware

    from {{ cookiecutter.project_slug }}.api import health, v1
    from {{ cookiecutter.project_slug }}.api.metrics import http_metrics
    from {{ cookiecutter.project_slug }}.api.problems import (
        handle_app_error,
        handle_http_exception,
        handle_validation_error,
    )
    from {{ cookiecutter.project_slug }}.container import build_container
    from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver
    from {{ cookiecutter.project_slug }}.core.errors import AppError{% if cookiecutter.include_example_domain == 'y' %}, NotFoundError{% endif %}
    from {{ cookiecutter.project_slug }}.core.logging import configure_logging
    from {{ cookiecutter.project_slug }}.core.rate_limit import parse_rules
    from {{ cookiecutter.project_slug }}.main import rate_limiter_of, revocation_key_of
    from {{ cookiecutter.project_slug }}.middleware.auth import AuthPrincipalMiddleware
    from {{ cookiecutter.project_slug }}.middleware.body_limit import BodySizeLimitMiddleware
    from {{ cookiecutter.project_slug }}.middleware.errors import ErrorHandlerMiddleware
    from {{ cookiecutter.project_slug }}.middleware.rate_limit import RateLimitMiddleware
    from {{ cookiecutter.project_slug }}.middleware.request_context import RequestContextMiddleware
    from {{ cookiecutter.project_slug }}.middleware.routes import flat_routes
    from {{ cookiecutter.project_slug }}.middleware.security_headers import (
        SecurityHeadersMiddleware,
    )
    from {{ cookiecutter.project_slug }}.middleware.timeout import TimeoutMiddleware

    def on(layer: str) -> bool:
        return layer in layers

    # Below the logging layer, only warnings are written: the access line is filtered out.
    level = "INFO" if on("+ logging at INFO") else "WARNING"
    configure_logging(level, settings.effective_log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # The service's own graph: what the dependencies and the rate limiter read.
        async with build_container(settings, role="bench") as container:
            try:
                yield {"container": container}
            finally:
                bare_engine = getattr(app.state, "bare_engine", None)
                if bare_engine is not None:
                    await bare_engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    if on("+ service, unit of work, response model"):
        app.include_router(health.router)
        app.include_router(v1.router)
    elif on("+ dependencies"):
        app.include_router(health.router)
{%- if cookiecutter.include_example_domain == 'y' %}

        # The service's dependencies (token, user, unit of work), with the item read inline.
        @app.get("/api/v1/items/{item_id}")
        async def read_item(
            item_id: uuid.UUID, user: CurrentUser, uow: UnitOfWorkDep
        ) -> dict[str, Any]:
            item = await uow.session.get(Item, item_id)
            if item is None or (item.owner_id != user.id and not user.is_admin):
                raise NotFoundError(f"item {item_id} does not exist")
            return item_document(item)
{%- endif %}
    else:
        add_bare_routes(app, settings.database_url, settings.signing_key)
    if on("+ dependencies"):
        app.add_exception_handler(AppError, handle_app_error)
        app.add_exception_handler(StarletteHTTPException, handle_http_exception)
        app.add_exception_handler(RequestValidationError, handle_validation_error)

    # main.py's order, innermost first; the layers left out are skipped.
    if on("+ gzip"):
        app.add_middleware(GZipMiddleware, minimum_size=1024)
    if on("+ timeout"):
        app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds)
    if on("+ rate limit"):
        app.add_middleware(
            RateLimitMiddleware,
            limiter=rate_limiter_of,
            default_rules=parse_rules(settings.rate_limit_default, "default"),
            path_rules={"/api/v1/auth/": parse_rules(settings.rate_limit_auth, "auth")},
            client_addresses=ClientAddressResolver(settings.trusted_proxies),
            routes=lambda: flat_routes(app.router.routes),
            revocation_key=revocation_key_of,
        )
    if on("+ auth principal"):
        app.add_middleware(
            AuthPrincipalMiddleware,
            secret_key=settings.jwt_verification_key,
            api_key_pepper=settings.api_key_pepper_bytes,
            algorithm=settings.jwt_algorithm,
        )
    if on("+ body-size limit"):
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if on("+ security headers"):
        app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    if on("+ error handler"):
        app.add_middleware(ErrorHandlerMiddleware)
    if on("+ metrics"):
        Instrumentator().expose(app, include_in_schema=False)
    if on("+ request context"):
        from {{ cookiecutter.project_slug }}.main import QUIET_PATHS

        # The metrics are recorded by this middleware, with the route template it looks up.
        app.add_middleware(
            RequestContextMiddleware,
            quiet_paths=QUIET_PATHS,
            record=http_metrics() if on("+ metrics") else None,
        )
    return app
