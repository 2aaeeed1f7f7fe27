"""Last line of defence: anything unhandled becomes a problem, never a stack trace.

`database_error` also says which database failures are the client's fault (409, 422) or a
passing outage (503 with `Retry-After`) rather than a bug; the API's exception handlers use it
for errors raised in routes, this middleware for anything that escapes them.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import asyncpg
from sqlalchemy import exc as sa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core.errors import (
    AppError,
    ConflictError,
    ServiceUnavailableError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.middleware.problem import send_problem

log = get_logger(__name__)

# Raised by the driver, the pool or the socket underneath when the database cannot be reached.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.SQLAlchemyError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)
UNAVAILABLE_RETRY_AFTER = 5
_UNAVAILABLE = ServiceUnavailableError(
    "the database is unavailable; retry shortly", retry_after=UNAVAILABLE_RETRY_AFTER
)
_DEPENDENCY_UNAVAILABLE = ServiceUnavailableError(
    "a service this request needs is unavailable; retry shortly",
    retry_after=UNAVAILABLE_RETRY_AFTER,
)
# SQLSTATEs of a server that is shutting down, starting up or out of connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite names the failed constraint in its message: "UNIQUE constraint failed: users.email".
_SQLITE_CONSTRAINT = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (.+))?")
_SQLITE_UNAVAILABLE = re.compile(r"database is locked|unable to open database file|disk I/O error")
_NAME_PREFIXES = ("uq_", "ck_", "fk_")


def database_error(exc: BaseException) -> AppError | None:
    """The problem `exc` stands for, or `None` when it is a bug (answer 500 and log it)."""
    if isinstance(exc, sa.TimeoutError):  # no connection free in the pool in time
        return _UNAVAILABLE
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        # Raised by the socket under whichever client failed to connect.
        return _DEPENDENCY_UNAVAILABLE
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return _UNAVAILABLE
    if not isinstance(exc, sa.DBAPIError):
        return None
    if exc.connection_invalidated:
        return _UNAVAILABLE
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(exc, sa.IntegrityError):
        return _integrity_error(exc, state)
    if state is not None and (state.startswith("08") or state in _UNAVAILABLE_STATES):
        return _UNAVAILABLE
    if state is None and isinstance(exc, sa.InterfaceError):
        # The driver lost or never had its connection; there is no server error code.
        return _UNAVAILABLE
    if state is None and _SQLITE_UNAVAILABLE.search(str(exc.orig)):
        # SQLite reports a busy file like a syntax error (OperationalError); tell them apart.
        return _UNAVAILABLE
    return None


def _integrity_error(exc: sa.DBAPIError, state: str | None) -> AppError:
    kind, field = _violation(exc, state)
    if kind == "unique":
        return ConflictError(
            f"another record already has this {field}",
            errors=[{"field": field, "message": "is already taken", "type": "unique"}],
        )
    messages = {
        "not_null": "is required",
        "foreign_key": "refers to a record that does not exist",
        "check": "is not an allowed value",
    }
    return ValidationFailedError(
        f"the request breaks a rule on {field}",
        errors=[{"field": field, "message": messages.get(kind, "is invalid"), "type": kind}],
    )


def _violation(exc: sa.DBAPIError, state: str | None) -> tuple[str, str]:
    """The kind of constraint violated and the field it guards, from PostgreSQL or SQLite."""
    kinds = {"23505": "unique", "23502": "not_null", "23503": "foreign_key", "23514": "check"}
    # asyncpg keeps its own exception, with the diagnostic fields, as the adapter's cause.
    cause: Any = getattr(exc.orig, "__cause__", None)
    if state is not None:
        column = getattr(cause, "column_name", None)
        return kinds.get(state, "integrity"), column or _field_of(
            getattr(cause, "constraint_name", None), getattr(cause, "table_name", None)
        )
    match = _SQLITE_CONSTRAINT.search(str(exc.orig))
    if match is None:
        return "integrity", "body"
    kind = match.group(1).lower().replace(" ", "_")
    target = (match.group(2) or "body").split(",")[0].strip()
    return kind, target.rpartition(".")[2]


def _field_of(constraint: str | None, table: str | None) -> str:
    # The naming convention (models/base.py) makes `uq_users_email` guard the field `email`.
    if not constraint:
        return "body"
    for prefix in _NAME_PREFIXES:
        full = f"{prefix}{table}_" if table else prefix
        if constraint.startswith(full):
            return constraint.removeprefix(full)
    return constraint


class ErrorHandlerMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            error = database_error(exc)
            if error is None:
                log.exception("unhandled error")
            else:
                log.warning("request failed", error=type(exc).__name__, status=error.status)
            if response_started:
                # Headers are gone; the server can only cut the connection.
                raise
            if error is None:
                await send_problem(
                    scope, send, 500, "the server failed to handle this request; it has been logged"
                )
                return
            headers = []
            if isinstance(error, ServiceUnavailableError):
                headers.append((b"retry-after", str(error.retry_after).encode()))
            await send_problem(
                scope, send, error.status, error.detail, headers=headers, **error.extensions
            )
