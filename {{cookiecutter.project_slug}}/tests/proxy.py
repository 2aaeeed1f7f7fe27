"""A TCP proxy the tests can cut, to take a real service away from the process under test.

Cutting closes every connection through the proxy and refuses new ones, which is what clients
see while a database or Redis restarts; restoring accepts connections again, to the same
server. Restored with `forward=False`, it accepts connections and never answers: a server that
hangs. The service itself keeps running for the other tests that share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from tests.processes import free_port

BUFFER_BYTES = 65536


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to `target`; runs its own event loop in a thread."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        # Known before the first `restore`, so a process can be pointed here while it refuses.
        self.port = free_port()
        self.accepted = 0
        self._forwarding = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self, *, listening: bool = True) -> None:
        self._thread.start()
        if listening:
            self.restore()

    def cut(self) -> None:
        """Close every connection and stop listening: connecting is refused until `restore`."""
        self._call(self._cut())

    def restore(self, *, forward: bool = True) -> None:
        """Accept connections again: forwarded, or (`forward=False`) held open unanswered."""
        self._forwarding = forward
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Any) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.result(timeout=30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server process goes away
        self._writers.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if not self._forwarding:
            self._writers.add(writer)  # held: the peer waits for an answer that never comes
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        for end in (writer, upstream_writer):
            self._writers.discard(end)
            end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(BUFFER_BYTES):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.contextmanager
def cuttable_proxy(
    target_host: str, target_port: int, *, listening: bool = True
) -> Iterator[CuttableProxy]:
    """A running proxy; with `listening=False` it refuses connections until `restore`."""
    proxy = CuttableProxy(target_host, target_port)
    proxy.start(listening=listening)
    try:
        yield proxy
    finally:
        proxy.close()
