"""Request id, log context, the one access line per request and its HTTP metrics.

An incoming `X-Request-ID` is kept when it is a sane token (so ids follow a request across
services) and replaced otherwise, so log injection through the header is impossible.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.middleware.routes import route_template

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

access_log = get_logger("{{ cookiecutter.project_slug }}.access")

RecordRequest = Callable[[Scope, str | None, int, float], None]
"""Records a finished request: its scope, route template (None when no route matched), status
and duration in seconds."""


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            return candidate if _SANE_ID.fullmatch(candidate) else None
    return None


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        quiet_paths: frozenset[str] = frozenset(),
        record: RecordRequest | None = None,
    ) -> None:
        self.app = app
        self.record = record
        # Probes hit these every few seconds; logging each would drown the real traffic.
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(
            request_id=request_id, method=scope["method"], path=scope["path"]
        ):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                seconds = time.perf_counter() - started
                # The template (`/api/v1/items/{item_id}`) groups requests by endpoint, whatever
                # the ids in the path.
                route = route_template(scope)
                if self.record is not None:
                    self.record(scope, route, status, seconds)
                if scope["path"] not in self.quiet_paths or status >= 400:
                    access_log.info(
                        "request",
                        status=status,
                        duration_ms=round(seconds * 1000, 2),
                        route=route,
                        user_id=scope["state"].get("user_id"),
                        client=scope["client"][0] if scope.get("client") else None,
                    )
