"""OpenTelemetry traces over OTLP for FastAPI, SQLAlchemy, Redis, httpx and Celery.

Configured only by the standard `OTEL_*` variables, read by the OpenTelemetry SDK itself
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, ...).
Tracing is off until an OTLP endpoint is set; then nothing of OpenTelemetry is even imported,
so start-up costs what it costs without tracing. That is why the imports below live inside the
functions that need them.

One tracer provider per process, installed globally on first use (the OpenTelemetry API allows
one); each container instruments its engine and the client libraries while it is open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from structlog.typing import EventDict, Processor, WrappedLogger

from {{ cookiecutter.project_slug }}.core.events import UNTRACED, Event, EventTracing

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
DEFAULT_SERVICE_NAME = "{{ cookiecutter.project_slug }}"
# Probes and scrapes would be most of the traces and tell nothing.
DEFAULT_EXCLUDED_URLS = "/health/live,/health/ready,/metrics"


def tracing_configured() -> bool:
    """Whether an OTLP endpoint is set (and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def tracer_provider() -> TracerProvider:
    """The process's provider, exporting in batches over OTLP/HTTP; created on first use."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(defaults))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


class Instrumentor(Protocol):
    """What every OpenTelemetry instrumentor offers (their base class is not typed)."""

    def instrument(self, **options: Any) -> object: ...

    def uninstrument(self, **options: Any) -> object: ...


class OutboxTracing:
    """`EventTracing` over OpenTelemetry: an outbox event stores the W3C trace context it was
    recorded in, and each handler run is a span continuing that trace.

    The relay run that delivers an event (a Celery task, or the API's own loop) is often not in
    the request's trace: it may deliver several requests' events, or be started by the beat
    schedule. So a handler's span takes the stored context as its parent, and links to the
    relay run instead.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer(__name__)

    def capture(self) -> dict[str, str] | None:
        from opentelemetry.propagate import inject

        # The configured propagators (OTEL_PROPAGATORS): W3C `traceparent` and `tracestate`,
        # plus `baggage`, by default.
        carrier: dict[str, str] = {}
        inject(carrier)
        return carrier or None

    @contextmanager
    def handling(
        self, handler: str, event: Event, context: Mapping[str, str] | None
    ) -> Iterator[object]:
        from opentelemetry import trace
        from opentelemetry.propagate import extract
        from opentelemetry.trace import Link, SpanKind

        relay_run = trace.get_current_span().get_span_context()
        with self._tracer.start_as_current_span(
            handler,
            # No stored context (tracing was off when it was recorded): the relay run's trace.
            context=extract(context) if context else None,
            kind=SpanKind.CONSUMER,
            links=[Link(relay_run)] if relay_run.is_valid else None,
            attributes={
                "messaging.system": "outbox",
                "messaging.operation.type": "process",
                "messaging.destination.name": event.name,
                "messaging.message.id": str(event.event_id),
            },
        ) as span:
            yield span


@contextmanager
def tracing(engine: AsyncEngine) -> Iterator[EventTracing]:
    """Trace `engine`'s queries and every Redis, httpx and Celery call while the block runs,
    and yield what carries a trace through the outbox; flush the spans at its end. Does
    nothing (and yields `UNTRACED`) unless `tracing_configured()`."""
    if not tracing_configured():
        yield UNTRACED
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider = tracer_provider()
    database = SQLAlchemyInstrumentor()
    clients: list[Instrumentor] = [
        HTTPXClientInstrumentor(),
        RedisInstrumentor(),
        # Carries a request's trace into the tasks it enqueues, worker included.
        CeleryInstrumentor(),  # type: ignore[no-untyped-call]
    ]
    # Instrumentors are process-wide: undone when the container closes, so the next container
    # (a test's, say) instruments its own engine.
    with ExitStack() as undo:
        # The instrumentation declares SQLAlchemy < 2.1 but works with 2.1, whose event API is
        # unchanged; without skipping the check it would silently trace no query.
        database.instrument(
            engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
        )
        undo.callback(database.uninstrument)
        for client in clients:
            if getattr(client, "is_instrumented_by_opentelemetry", False):
                continue  # for the whole process, by its entry point: leave it be
            client.instrument(tracer_provider=provider)
            undo.callback(client.uninstrument)
        try:
            yield OutboxTracing(provider)
        finally:
            provider.force_flush()


def instrument_worker() -> None:
    """Span every task a Celery process runs or sends, from its very first; unless configured,
    nothing. A worker opens its container (and with it `tracing`) only once a task needs it,
    after that task's span should have begun, so the worker instruments Celery at start-up."""
    if not tracing_configured():
        return
    from opentelemetry.instrumentation import celery

    instrumentor = celery.CeleryInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=tracer_provider())


def instrument_app(app: FastAPI) -> None:
    """Server spans for every request, outside all other middleware; unless configured, none."""
    if not tracing_configured():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    excluded = os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider(),
        excluded_urls=excluded,
        # The ASGI send and receive steps as spans of their own double the volume for nothing.
        exclude_spans=["receive", "send"],
    )


def log_processors() -> list[Processor]:
    """`trace_id` and `span_id` of the current span on every log line, as the trace backend
    shows them; no processor unless `tracing_configured()`."""
    if not tracing_configured():
        return []
    from opentelemetry import trace

    def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
        return event_dict

    return [add_trace_ids]
