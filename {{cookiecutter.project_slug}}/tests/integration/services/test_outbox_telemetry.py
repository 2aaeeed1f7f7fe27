"""An outbox event keeps the trace it was recorded in: each run of its handlers continues that
trace, a retry in a later relay run too, and links to the relay run that delivered it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.core.events import UNTRACED, Event, EventTracing
from {{ cookiecutter.project_slug }}.core.telemetry import OutboxTracing, tracer_provider
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    create_session_maker,
    unit_of_work,
)
from {{ cookiecutter.project_slug }}.models.outbox import OutboxEvent
from {{ cookiecutter.project_slug }}.services.outbox import (
    Handler,
    OutboxPublisher,
    OutboxRelay,
    RelayPolicy,
)
from tests.processes import fresh_database
from tests.services import ServiceUrls
from tests.telemetry_collector import CONSUMER, Collector, ExportedSpan, process_collector

HANDLER = "tests.noted"


class Noted(Event):
    name: ClassVar[str] = "test.noted"
    aggregate: ClassVar[str] = "key"

    key: str


@pytest.fixture(scope="module")
async def database_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of this module's own: relays and handlers commit for real here."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


@pytest.fixture
async def session_maker(database_url: str) -> AsyncIterator[SessionMaker]:
    engine: AsyncEngine = create_engine(database_url, pool_size=2)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM processed_events"))
        await connection.execute(text("DELETE FROM outbox"))
    yield create_session_maker(engine)
    await engine.dispose()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Collector:
    collector = process_collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    collector.clear()
    return collector


async def publish(session_maker: SessionMaker, event: Event, tracing: EventTracing) -> None:
    async with unit_of_work(session_maker) as uow:
        await OutboxPublisher(uow, lambda: None, tracing).publish(event)


def relay_failing_once(session_maker: SessionMaker, tracing: EventTracing) -> OutboxRelay:
    attempts: list[Event] = []

    async def handle(uow: UnitOfWork, event: Event) -> None:
        attempts.append(event)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt fails")

    return OutboxRelay(
        session_maker, {Noted.name: [Handler(HANDLER, handle)]}, RelayPolicy(), tracing
    )


def handler_spans(collector: Collector) -> list[ExportedSpan]:
    tracer_provider().force_flush()
    return [span for span in collector.spans if span.name == HANDLER]


async def test_every_handler_run_continues_the_trace_the_event_was_recorded_in(
    session_maker: SessionMaker, traced: Collector
) -> None:
    tracing = OutboxTracing(tracer_provider())
    tracer = tracer_provider().get_tracer(__name__)
    with tracer.start_as_current_span("request") as request:
        await publish(session_maker, Noted(key="a"), tracing)
    relay = relay_failing_once(session_maker, tracing)

    runs = []
    # Two relay runs, each a trace of its own (as beat's are): the first fails, the second retries.
    for name in ("first relay run", "second relay run"):
        with tracer.start_as_current_span(name) as run:
            runs.append(f"{run.get_span_context().span_id:016x}")
            assert await relay.drain() == 1
        async with session_maker() as session, session.begin():
            await session.execute(text("UPDATE outbox SET available_at = now()"))

    recorded = request.get_span_context()
    async with session_maker() as session:
        (stored,) = (await session.scalars(select(OutboxEvent.trace_context))).all()
    assert stored is not None
    # W3C: version-trace id-parent id-flags.
    assert stored["traceparent"].split("-")[1:3] == [
        f"{recorded.trace_id:032x}",
        f"{recorded.span_id:016x}",
    ]
    spans = handler_spans(traced)
    assert [span.links for span in spans] == [(runs[0],), (runs[1],)]
    for span in spans:
        assert span.kind == CONSUMER
        assert span.trace_id == f"{recorded.trace_id:032x}"
        assert span.parent_span_id == f"{recorded.span_id:016x}"
        assert span.attributes["messaging.destination.name"] == Noted.name


async def test_an_event_recorded_without_a_trace_is_handled_in_the_relay_runs(
    session_maker: SessionMaker, traced: Collector
) -> None:
    await publish(session_maker, Noted(key="b"), UNTRACED)
    tracer = tracer_provider().get_tracer(__name__)
    relay = OutboxRelay(
        session_maker,
        {Noted.name: [Handler(HANDLER, no_op)]},
        RelayPolicy(),
        OutboxTracing(tracer_provider()),
    )

    with tracer.start_as_current_span("relay run") as run:
        assert await relay.drain() == 1

    (span,) = handler_spans(traced)
    assert span.trace_id == f"{run.get_span_context().trace_id:032x}"
    assert span.parent_span_id == f"{run.get_span_context().span_id:016x}"


async def no_op(uow: UnitOfWork, event: Event) -> None:
    return None
