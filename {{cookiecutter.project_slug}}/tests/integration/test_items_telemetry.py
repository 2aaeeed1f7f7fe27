"""The handlers of a request's events continue the request's trace.

Here there is no broker, so the API's own relay delivers the event, in the same process;
tests/e2e/test_worker_telemetry.py follows the trace into a real worker process.
"""

from __future__ import annotations

import asyncio

import pytest

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings, serving
from tests.factories import auth_headers
from tests.telemetry_collector import CONSUMER, SERVER, Collector, process_collector

PROCESS_ITEM = "{{ cookiecutter.project_slug }}.handlers.items.process_item"


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Collector:
    collector = process_collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    collector.clear()
    return collector


async def test_the_handler_of_a_requests_event_shares_its_trace(
    settings: Settings, traced: Collector
) -> None:
    # Neither a broker nor Redis: the relay runs in this process.
    in_process = make_settings(database_url=settings.database_url)
    assert in_process.effective_broker_url is None
    async with serving(create_app(in_process)) as client:
        headers = await auth_headers(client)
        traced.clear()
        response = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)
        assert response.status_code == 201
        item_url = f"/api/v1/items/{response.json()['id']}"
        # The relay delivers after the response; a busy machine is slow, not wrong.
        async with asyncio.timeout(60):
            while True:
                item = (await client.get(item_url, headers=headers)).json()
                if item["processed_at"] is not None:
                    break
                await asyncio.sleep(0.05)
    # The lifespan has ended: the container flushed its spans to the receiver.

    spans = traced.spans
    (server,) = [
        span for span in spans if span.kind == SERVER and span.name == "POST /api/v1/items"
    ]
    (handler,) = [span for span in spans if span.name == PROCESS_ITEM]
    assert handler.kind == CONSUMER
    assert handler.trace_id == server.trace_id
    assert handler.parent_span_id == server.span_id
    assert handler.service == server.service
