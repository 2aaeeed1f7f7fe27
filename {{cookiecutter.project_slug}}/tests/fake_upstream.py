"""A tiny HTTP/1.1 server on loopback that answers as a test tells it to: a status and body,
a delay, or a dropped connection. The outbound client is tested over real sockets, not mocks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

OK_BODY = b'{"status": "ok"}'


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = OK_BODY
    delay: float = 0.0
    # Close the connection without answering (the client sees a protocol error).
    drop: bool = False


class FakeUpstream:
    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._connections: set[asyncio.Task[None]] = set()

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order; then with `default`."""
        self._script.extend(replies)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.partition(":")[::2] for line in lines[1:] if line)
                length = int(
                    next((v for k, v in headers.items() if k.lower() == "content-length"), 0)
                )
                await reader.readexactly(length)
                self.requests.append((method, path))
                reply = self._script.popleft() if self._script else self.default
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if reply.drop:
                    return
                writer.write(
                    f"HTTP/1.1 {reply.status} Fake\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(reply.body)}\r\n\r\n".encode()
                    + reply.body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    @property
    def count(self) -> int:
        return len(self.requests)


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream.url = f"http://127.0.0.1:{port}"
    try:
        yield upstream
    finally:
        server.close()
        for task in list(upstream._connections):
            task.cancel()
        for task in list(upstream._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()
