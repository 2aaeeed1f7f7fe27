"""Problem responses sent by middleware, which answers before (or instead of) the application."""

from __future__ import annotations

from starlette.types import Scope, Send

from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE, problem_json


async def send_problem(
    scope: Scope, send: Send, status: int, detail: str, *, close: bool = False
) -> None:
    """Send an RFC 9457 problem for `scope`; `close` drops the connection after it."""
    body = problem_json(
        status,
        detail=detail,
        instance=scope.get("path"),
        request_id=scope.get("state", {}).get("request_id"),
    )
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        # The rest of an oversized body is never read; the connection cannot be reused.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
