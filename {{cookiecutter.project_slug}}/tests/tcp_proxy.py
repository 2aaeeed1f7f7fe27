"""A TCP proxy on loopback that a test switches between refusing, stalling and forwarding.

Faults for processes the test cannot reach into (a worker's database connection, say): the
process is pointed at the proxy, and the real server stays untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.processes import free_port


class TcpProxy:
    """Refuses connections until `listen`; then forwards them, or holds them open unanswered."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self.accepted = 0
        self._target = (target_host, target_port)
        self._forward = True
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def listen(self, *, forward: bool = True) -> None:
        self._forward = forward
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.accepted += 1
                self._sockets.append(client)
            if not self._forward:
                continue  # held: the peer waits for an answer that never comes
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._server is not None:
            # shutdown wakes the thread blocked in accept(); close alone may not.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
