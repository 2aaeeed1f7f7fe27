"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from {{ cookiecutter.project_slug }}.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    AuthenticationError,
    RateLimitedError,
    ServiceUnavailableError,
    problem_body,
)
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.security import AUTH_FAILURES
from {{ cookiecutter.project_slug }}.middleware.errors import database_error
from {{ cookiecutter.project_slug }}.middleware.routes import flat_routes

log = get_logger(__name__)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _type_base(request: Request) -> str:
    return str(request.app.state.problem_type_base)


async def handle_app_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, AuthenticationError):
        AUTH_FAILURES.labels(reason=exc.reason).inc()
    if isinstance(exc, RateLimitedError | ServiceUnavailableError):
        headers["Retry-After"] = str(exc.retry_after)
    extensions = exc.extensions
    if exc.status == 422 and "errors" not in extensions:
        # Every 422 lists its field errors (the documented schema requires the list), even a
        # rule that names no field.
        extensions = {**extensions, "errors": []}
    body = problem_body(
        exc.status,
        detail=exc.detail,
        instance=request.url.path,
        request_id=_request_id(request),
        code=exc.code,
        title=exc.title,
        type_base=_type_base(request),
        **extensions,
    )
    return ProblemResponse(body, status_code=exc.status, headers=headers)


async def handle_database_error(request: Request, exc: Exception) -> ProblemResponse:
    """Constraint violations are the client's (409, 422), an unreachable database a 503; any
    other driver error is a bug: logged in full (with the request id), answered without SQL."""
    error = database_error(exc)
    if error is None:
        log.exception("database error", error=type(exc).__name__)
        body = problem_body(
            500,
            detail="the server failed to handle this request; it has been logged",
            instance=request.url.path,
            request_id=_request_id(request),
            type_base=_type_base(request),
        )
        return ProblemResponse(body, status_code=500)
    if error.status >= 500:
        log.warning("database unavailable", error=type(exc).__name__, reason=_first_line(exc))
    return await handle_app_error(request, error)


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


async def handle_http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; list every method.
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed here; use {', '.join(allowed)}"
    body = problem_body(
        exc.status_code,
        detail=detail,
        instance=request.url.path,
        request_id=_request_id(request),
        type_base=_type_base(request),
    )
    return ProblemResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in flat_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def handle_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    content_type = request.headers.get("content-type")
    body_errors = any(error["loc"][:1] == ("body",) for error in exc.errors())
    if content_type and not _is_json(content_type) and body_errors:
        # FastAPI hands a non-JSON body to validation as raw bytes; the fault is the type.
        body = problem_body(
            415,
            detail=f"send the body as application/json, not {content_type}",
            instance=request.url.path,
            request_id=_request_id(request),
            type_base=_type_base(request),
        )
        return ProblemResponse(body, status_code=415)
    errors = [_field_error(error) for error in exc.errors()]
    body = problem_body(
        422,
        detail="the request has invalid fields; see `errors`",
        instance=request.url.path,
        request_id=_request_id(request),
        type_base=_type_base(request),
        errors=errors,
    )
    return ProblemResponse(body, status_code=422)


def _field_error(error: Mapping[str, Any]) -> dict[str, str]:
    location = tuple(error["loc"])
    if error["type"] == "json_invalid":
        # FastAPI puts the character offset where a field name would be.
        position = f" at character {location[1]}" if len(location) > 1 else ""
        return {"field": "body", "message": f"{error['msg']}{position}", "type": error["type"]}
    return {
        # ("body", "title") -> "title"; ("query", "page") -> "page"
        "field": ".".join(str(part) for part in location[1:]) or str(location[0]),
        "message": error["msg"],
        "type": error["type"],
    }
