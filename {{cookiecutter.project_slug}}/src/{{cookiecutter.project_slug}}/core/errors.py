"""One exception hierarchy for the whole service.

Services and repositories raise these; the API layer renders them as RFC 9457 problem details.
Nothing here knows about HTTP frameworks, so tasks and the CLI use the same errors.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem `type`s are this base plus a code; by default pages the service serves itself.
DEFAULT_PROBLEM_TYPE_BASE = "/problems/"


class AppError(Exception):
    """`status`, `type` and `title` describe the class of problem; `detail` this instance."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        self.detail = detail or self.title
        self.extensions = extensions
        super().__init__(self.detail)


class BadRequestError(AppError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class InvalidCursorError(BadRequestError):
    code = "invalid-cursor"
    title = "Invalid pagination cursor"


class NotFoundError(AppError):
    status = 404
    code = "not-found"
    title = "Resource not found"


class ConflictError(AppError):
    status = 409
    code = "conflict"
    title = "Resource already exists"


class StaleVersionError(ConflictError):
    """A row changed between being read and being written (optimistic concurrency)."""

    code = "concurrent-update"
    title = "Changed by another request"


class PreconditionFailedError(AppError):
    status = 412
    code = "precondition-failed"
    title = "Precondition failed"


class ValidationFailedError(AppError):
    status = 422
    code = "validation-failed"
    title = "Request validation failed"


class UnsupportedMediaTypeError(AppError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class AuthenticationError(AppError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"

    def __init__(
        self, detail: str | None = None, *, reason: str = "unauthenticated", **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        # Why, in a word from a fixed set (`missing_token`, `invalid_token`,
        # `invalid_credentials`, `inactive_account`): the auth-failure metric's label.
        self.reason = reason


class PermissionDeniedError(AppError):
    status = 403
    code = "forbidden"
    title = "Permission denied"


class BusinessRuleError(AppError):
    status = 422
    code = "business-rule"
    title = "Business rule violated"


class IdempotencyKeyReusedError(BusinessRuleError):
    code = "idempotency-key-reused"
    title = "Idempotency key reused with a different request"


class RateLimitedError(AppError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.retry_after = retry_after


class ServiceUnavailableError(AppError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"

    def __init__(
        self, detail: str | None = None, *, retry_after: int = 5, **extensions: Any
    ) -> None:
        super().__init__(detail, **extensions)
        self.retry_after = retry_after


class CircuitOpenError(ServiceUnavailableError):
    code = "circuit-open"
    title = "Upstream temporarily disabled"


# Titles for errors raised by the framework itself (routing, method matching, body parsing).
_HTTP_PROBLEMS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Permission denied"),
    404: ("not-found", "Resource not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-failed", "Request validation failed"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}


def problem_body(
    status: int,
    *,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    code: str | None = None,
    title: str | None = None,
    type_base: str = DEFAULT_PROBLEM_TYPE_BASE,
    **extensions: Any,
) -> dict[str, Any]:
    default_code, default_title = _HTTP_PROBLEMS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": type_base + (code or default_code),
        "title": title or default_title,
        "status": status,
        "detail": detail or title or default_title,
        "instance": instance,
        "request_id": request_id,
    }
    body.update(extensions)
    return body


def problem_json(status: int, **fields: Any) -> bytes:
    """A serialised problem, for middleware that answers before the application runs."""
    return orjson.dumps(problem_body(status, **fields))


def problem_types() -> dict[str, tuple[int, str]]:
    """Every problem code this service can answer with: its status and title."""
    types = {code: (status, title) for status, (code, title) in _HTTP_PROBLEMS.items()}
    pending: list[type[AppError]] = [AppError]
    while pending:
        error = pending.pop()
        types.setdefault(error.code, (error.status, error.title))
        pending.extend(error.__subclasses__())
    return types
