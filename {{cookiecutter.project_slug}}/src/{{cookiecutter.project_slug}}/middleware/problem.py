"""Problem responses sent by middleware, which answers before (or instead of) the application."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import Scope, Send

from {{ cookiecutter.project_slug }}.core.errors import (
    DEFAULT_PROBLEM_TYPE_BASE,
    PROBLEM_MEDIA_TYPE,
    problem_json,
)


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    detail: str,
    *,
    close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] = (),
    **extensions: Any,
) -> None:
    """Send an RFC 9457 problem for `scope` with extra `headers` and body `extensions`;
    `close` drops the connection."""
    body = problem_json(
        status,
        detail=detail,
        instance=scope.get("path"),
        request_id=scope.get("state", {}).get("request_id"),
        type_base=_type_base(scope),
        **extensions,
    )
    response_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if close:
        # The rest of an oversized body is never read; the connection cannot be reused.
        response_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def _type_base(scope: Scope) -> str:
    # The app (set on the scope before any middleware runs) carries the configured base.
    app = scope.get("app")
    return str(getattr(getattr(app, "state", None), "problem_type_base", DEFAULT_PROBLEM_TYPE_BASE))
