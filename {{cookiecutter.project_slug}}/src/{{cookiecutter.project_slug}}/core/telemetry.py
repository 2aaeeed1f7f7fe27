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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from structlog.typing import EventDict, Processor, WrappedLogger

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


@contextmanager
def tracing(engine: AsyncEngine) -> Iterator[None]:
    """Trace `engine`'s queries and every Redis, httpx and Celery call while the block runs;
    flush the spans at its end. Does nothing unless `tracing_configured()`."""
    if not tracing_configured():
        yield
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
            client.instrument(tracer_provider=provider)
            undo.callback(client.uninstrument)
        try:
            yield
        finally:
            provider.force_flush()


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
