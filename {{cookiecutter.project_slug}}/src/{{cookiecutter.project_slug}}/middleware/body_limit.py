"""Refuse request bodies over a size limit with 413, before the application reads them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.middleware.problem import send_problem


class BodyTooLargeError(Exception):
    pass


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, send)
                return

        # Chunked bodies carry no length up front; count what arrives instead. The 413 is sent
        # as soon as the limit is passed: frameworks catch errors raised while reading the body
        # (FastAPI turns them into a 400), so whatever the app answers afterwards is dropped.
        received = 0
        response_started = False
        rejected = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not response_started and not rejected:
                        rejected = True
                        await self._reject(scope, send)
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not rejected:
                raise

    async def _reject(self, scope: Scope, send: Send) -> None:
        detail = f"the request body exceeds {self.max_bytes} bytes"
        await send_problem(scope, send, 413, detail, close=True)
