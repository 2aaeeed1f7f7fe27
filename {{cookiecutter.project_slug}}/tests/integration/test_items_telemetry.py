"""A task started by a request belongs to the request's trace.

Here the task runs eagerly (no broker), in the same process; tests/e2e/test_items_telemetry.py
follows the trace into a real worker process.
"""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings, serving
from tests.factories import auth_headers
from tests.telemetry_collector import CONSUMER, SERVER, Collector, process_collector


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Collector:
    collector = process_collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    collector.clear()
    return collector


async def test_the_task_a_request_enqueues_shares_its_trace(
    settings: Settings, traced: Collector
) -> None:
    # Neither a broker nor Redis: tasks run eagerly, in this process.
    eager = make_settings(database_url=settings.database_url)
    assert eager.effective_broker_url is None
    async with serving(create_app(eager)) as client:
        headers = await auth_headers(client)
        traced.clear()
        response = await client.post("/api/v1/items", json={"title": "Lamp"}, headers=headers)

    assert response.status_code == 201
    spans = traced.spans
    (server,) = [span for span in spans if span.kind == SERVER and "/api/v1/items" in span.name]
    (task,) = [span for span in spans if span.kind == CONSUMER and "process_item" in span.name]
    assert task.trace_id == server.trace_id
    assert task.service == server.service
