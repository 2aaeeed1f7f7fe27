"""Last line of defence: anything unhandled becomes a 500 problem, never a stack trace."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.middleware.problem import send_problem

log = get_logger(__name__)


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
        except Exception:
            log.exception("unhandled error")
            if response_started:
                # Headers are gone; the server can only cut the connection.
                raise
            await send_problem(
                scope, send, 500, "the server failed to handle this request; it has been logged"
            )
