"""Traces over OTLP: a request is one trace with its queries inside, and its log lines name it.

Spans are exported for real, over OTLP/HTTP, to a receiver the test runs on a free port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.telemetry import tracing_configured
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import serving
from tests.factories import PASSWORD, unique_email
from tests.processes import service_env
from tests.telemetry_collector import CLIENT, SERVER, Collector, ExportedSpan, process_collector


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Collector:
    collector = process_collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    collector.clear()
    return collector


def ancestors(span: ExportedSpan, spans: list[ExportedSpan]) -> list[str]:
    """The ids of `span`'s parent, its parent's parent, ... as far as they were exported."""
    by_id = {candidate.span_id: candidate for candidate in spans}
    found = []
    parent = by_id.get(span.parent_span_id)
    while parent is not None:
        found.append(parent.span_id)
        parent = by_id.get(parent.parent_span_id)
    return found


def test_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing_configured()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing_configured()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing_configured()


def test_without_an_endpoint_nothing_is_started() -> None:
    """Cold start is unchanged: no exporter or instrumentation loaded, no provider installed.

    (FastAPI and redis-py import the OpenTelemetry API and SDK themselves when installed.)
    """
    probe = textwrap.dedent(
        """
        import sys
        from {{ cookiecutter.project_slug }}.core.config import load_settings
        from {{ cookiecutter.project_slug }}.main import create_app

        create_app(load_settings(environment="test", secret_key="x" * 40))
        heavy = ("opentelemetry.exporter", "opentelemetry.instrumentation")
        print(sorted(name for name in sys.modules if name.startswith(heavy)))
        from opentelemetry import trace
        print(type(trace.get_tracer_provider()).__name__)
        """
    )
    env = service_env(OTEL_EXPORTER_OTLP_ENDPOINT=None, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=None)
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["[]", "ProxyTracerProvider"]


class TestRequestTrace:
    async def test_server_span_has_the_database_spans_as_descendants(
        self, settings: Settings, traced: Collector
    ) -> None:
        app: FastAPI = create_app(settings)
        async with serving(app) as client:
            response = await client.post(
                "/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD}
            )
        # The lifespan has ended: the container flushed its spans to the receiver.

        assert response.status_code == 201
        spans = traced.spans
        (server,) = [span for span in spans if span.kind == SERVER]
        assert server.name == "POST /api/v1/auth/register"
        assert server.service == "{{ cookiecutter.project_slug }}"
        inside = [span for span in spans if span.trace_id == server.trace_id]
        queries = [span for span in inside if span.kind == CLIENT and span.name == "INSERT"]
        assert {query.attributes.get("db.system") for query in queries} == {"postgresql"}
        # The account and, in the same transaction, the event its follow-ups hang off.
        inserted = {str(query.attributes.get("db.statement")).split()[2] for query in queries}
        assert {"users", "outbox"} <= inserted
        for span in inside:
            if span is not server:
                assert server.span_id in ancestors(span, spans), span.name

    def test_log_lines_of_a_request_carry_its_trace_and_span_ids(
        self, traced: Collector, tmp_path: Path
    ) -> None:
        # Its own process: logging is configured once per process, as in production.
        probe = textwrap.dedent(
            """
            import asyncio
            from asgi_lifespan import LifespanManager
            from httpx import ASGITransport, AsyncClient
            from {{ cookiecutter.project_slug }}.core.config import load_settings
            from {{ cookiecutter.project_slug }}.main import create_app

            async def main():
                app = create_app(load_settings())
                async with LifespanManager(app) as manager:
                    transport = ASGITransport(app=manager.app)
                    async with AsyncClient(transport=transport, base_url="http://t") as client:
                        await client.get("/no-such-page")

            asyncio.run(main())
            """
        )
        env = service_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=traced.endpoint,
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        )
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        )

        lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        (access,) = [line for line in lines if line.get("status") == 404]
        (server,) = [span for span in traced.spans if span.kind == SERVER]
        assert access["trace_id"] == server.trace_id
        assert access["span_id"] == server.span_id
