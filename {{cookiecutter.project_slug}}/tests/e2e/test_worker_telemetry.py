"""A request's trace continues in the real worker that handles what the request recorded.

The real server and a real Celery worker, each its own process, export OTLP/HTTP to a receiver
this test runs on a free port, exactly as they would to a collector in production.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import PASSWORD, unique_email
from tests.processes import (
    SLUG,
    broker_url,
    celery_worker,
    delete_queue,
    fresh_database,
    running_server,
    server_env,
    started_process,
)
from tests.services import ServiceUrls
from tests.telemetry_collector import (
    CLIENT,
    CONSUMER,
    SERVER,
    Collector,
    ExportedSpan,
    start_collector,
)

pytestmark = pytest.mark.slow

API = "api-under-test"
WORKER = "worker-under-test"
# Celery's instrumentation names a task run `run/<task name>`; a handler span is the handler's.
RELAY_RUN = f"run/{SLUG}.outbox.relay"
WELCOME_HANDLER = f"{SLUG}.handlers.users.send_welcome_email"


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = start_collector()
    yield collector
    collector.stop()


def traced_env(env: dict[str, str], collector: Collector, service: str) -> dict[str, str]:
    return {
        **env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # Spans leave every 100 ms rather than every 5 s: the test waits for them.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # Tells the two processes' spans apart.
        "OTEL_SERVICE_NAME": service,
    }


def ancestors(span: ExportedSpan, spans: list[ExportedSpan]) -> list[str]:
    """The ids of `span`'s parent, its parent's parent, ... as far as they were exported."""
    by_id = {candidate.span_id: candidate for candidate in spans}
    found = []
    parent = by_id.get(span.parent_span_id)
    while parent is not None:
        found.append(parent.span_id)
        parent = by_id.get(parent.parent_span_id)
    return found


def wait_for_spans(
    collector: Collector, complete: Callable[[list[ExportedSpan]], bool], log: Callable[[], str]
) -> list[ExportedSpan]:
    """The spans received once `complete` holds; two minutes is far beyond a busy machine."""
    deadline = time.monotonic() + 120
    while not complete(spans := collector.spans):
        names = sorted({f"{span.service}: {span.name}" for span in spans})
        assert time.monotonic() < deadline, f"spans missing after 120s; got {names}\n{log()}"
        time.sleep(0.25)
    return spans


def test_the_worker_handles_a_requests_events_in_the_requests_trace(
    migrated_url: str, service_urls: ServiceUrls, collector: Collector, tmp_path: Path
) -> None:
    env = server_env(migrated_url, service_urls)
    worker_command = celery_worker("--pool=solo", "--concurrency=1")
    with (
        started_process(
            worker_command,
            env=traced_env(env, collector, WORKER),
            log_path=tmp_path / "worker.log",
        ) as worker,
        running_server(traced_env(env, collector, API), tmp_path / "server.log") as (base_url, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        # Registering records `user.registered` in the outbox and kicks the relay task; the
        # worker's relay run hands the event to the welcome e-mail handler.
        registered = http.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text

        def complete(spans: list[ExportedSpan]) -> bool:
            ours = [span for span in spans if span.service == WORKER]
            names = {span.name for span in ours}
            return {RELAY_RUN, WELCOME_HANDLER} <= names

        spans = wait_for_spans(collector, complete, worker.log)
        worker_exit = worker.stop(timeout=20)
    delete_queue(broker_url(service_urls), env["CELERY_QUEUE"])
    assert worker_exit == 0, worker.log()

    (server,) = [
        span
        for span in spans
        if span.service == API and span.kind == SERVER and span.name == "POST /api/v1/auth/register"
    ]
    trace = [span for span in spans if span.trace_id == server.trace_id]

    # The relay task the request enqueued ran in the worker, in the request's trace.
    (relay_run,) = [span for span in trace if span.service == WORKER and span.name == RELAY_RUN]
    assert relay_run.kind == CONSUMER
    assert server.span_id in ancestors(relay_run, spans)

    # The handler of the request's event continues the request's trace too, and its database
    # work is inside it.
    (handler,) = [span for span in spans if span.name == WELCOME_HANDLER]
    assert handler.service == WORKER
    assert handler.kind == CONSUMER
    assert handler.trace_id == server.trace_id
    assert handler.parent_span_id == server.span_id
    assert handler.attributes["messaging.destination.name"] == "user.registered"
    # It links to the relay run that delivered it (the only one: one request, no beat).
    assert handler.links == (relay_run.span_id,)
    handler_queries = [
        span
        for span in trace
        if span.kind == CLIENT and span.attributes.get("db.system") == "postgresql"
        if handler.span_id in ancestors(span, spans)
    ]
    assert any(query.name.startswith("UPDATE") for query in handler_queries), handler_queries

    # The request's own database spans are children of its server span.
    request_spans = [span for span in trace if span.service == API and span is not server]
    queries = [
        span
        for span in request_spans
        if span.kind == CLIENT and span.attributes.get("db.system") == "postgresql"
    ]
    assert any("INSERT" in query.name for query in queries), [s.name for s in request_spans]
    for span in request_spans:
        assert server.span_id in ancestors(span, spans), span.name
