"""Cancel a request that runs longer than its budget and answer 503 with `Retry-After`.

Cancellation reaches the handler as `CancelledError` at its next await: the unit of work rolls
back, and the client learns the request did nothing instead of waiting on a socket. A response
already started cannot be replaced; then the request is cut off and the error logged.
"""

from __future__ import annotations

import asyncio
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.middleware.problem import send_problem

log = get_logger(__name__)


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float, retry_after: float = 1.0) -> None:
        self.app = app
        self.seconds = seconds
        self.retry_after = str(max(1, math.ceil(retry_after))).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            # A TimeoutError the handler raised itself is its own error, not this budget's.
            if not deadline.expired() or response_started:
                raise
            log.warning("request timed out", timeout_s=self.seconds)
            await send_problem(
                scope,
                send,
                503,
                f"the request took longer than {self.seconds:g} s and was cancelled; retry",
                headers=[(b"retry-after", self.retry_after)],
            )
