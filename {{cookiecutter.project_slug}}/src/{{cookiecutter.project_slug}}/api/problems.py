"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from {{ cookiecutter.project_slug }}.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    RateLimitedError,
    ServiceUnavailableError,
    problem_body,
)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def handle_app_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimitedError | ServiceUnavailableError):
        headers["Retry-After"] = str(exc.retry_after)
    body = problem_body(
        exc.status,
        detail=exc.detail,
        instance=request.url.path,
        request_id=_request_id(request),
        problem_type=exc.type,
        title=exc.title,
        **exc.extensions,
    )
    return ProblemResponse(body, status_code=exc.status, headers=headers)


async def handle_http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    body = problem_body(
        exc.status_code, detail=detail, instance=request.url.path, request_id=_request_id(request)
    )
    return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)


async def handle_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = [
        {
            # ("body", "title") -> "title"; ("query", "page") -> "page"
            "field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    body = problem_body(
        422,
        detail="the request has invalid fields; see `errors`",
        instance=request.url.path,
        request_id=_request_id(request),
        errors=errors,
    )
    return ProblemResponse(body, status_code=422)
