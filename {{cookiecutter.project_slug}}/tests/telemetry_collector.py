"""A local OTLP/HTTP trace receiver: the spans the service really exports, decoded.

A real receiver on a free port rather than an in-memory exporter: the service is configured the
way it is in production (`OTEL_EXPORTER_OTLP_ENDPOINT`), and spans from other processes (a
server, a Celery worker) arrive in the same place.
"""

from __future__ import annotations

import functools
import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage

SERVER = SpanMessage.SpanKind.SPAN_KIND_SERVER
CLIENT = SpanMessage.SpanKind.SPAN_KIND_CLIENT
CONSUMER = SpanMessage.SpanKind.SPAN_KIND_CONSUMER


def _value(value: AnyValue) -> str | int | float | bool:
    """A scalar attribute as Python; anything else (arrays, maps) as its text."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    return str(value)


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, str | int | float | bool]
    # The ids of the spans this one links to (not its parent).
    links: tuple[str, ...] = ()


@dataclass
class Collector:
    endpoint: str
    server: ThreadingHTTPServer
    _spans: list[ExportedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ExportedSpan(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=tuple(link.span_id.hex() for link in span.links),
                        )
                    )
        with self._lock:
            self._spans.extend(received)

    @property
    def spans(self) -> list[ExportedSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_collector() -> Collector:
    """A receiver on a free loopback port, serving from a daemon thread."""
    collector: Collector

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                collector.receive(ExportTraceServiceRequest.FromString(body))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per export on stderr would drown the test output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector = Collector(endpoint=f"http://127.0.0.1:{server.server_address[1]}", server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return collector


@functools.cache
def process_collector() -> Collector:
    """The one receiver of this test process, started on first use, stopped with the process.

    One per process because the process's tracer provider is: it keeps exporting to the
    endpoint it was created with.
    """
    return start_collector()
