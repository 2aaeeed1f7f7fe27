"""Outbound calls against a fake upstream on loopback: which failures are retried, which are
not, and the circuit breaker opening, refusing without a connection, probing and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from {{ cookiecutter.project_slug }}.core.errors import CircuitOpenError
from {{ cookiecutter.project_slug }}.core.resilience import CircuitBreaker, CircuitState
from {{ cookiecutter.project_slug }}.integrations.http import (
    ResilientHttp,
    UpstreamUnavailableError,
    create_http_client,
)
from tests.fake_upstream import FakeUpstream, Reply, fake_upstream
from tests.processes import free_port

# Generous: on a busy machine a slow answer must not turn into a retry the test did not ask for.
TIMEOUT = 10.0
# The one test about timeouts waits this long for an answer that takes far longer.
SHORT_TIMEOUT = 1.0


def state(circuit: CircuitBreaker) -> CircuitState:
    # A call, so mypy does not narrow the property between two checks.
    return circuit.state


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as upstream:
        yield upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client(timeout=TIMEOUT) as client:
        yield client


def resilient(
    client: httpx.AsyncClient,
    url: str,
    *,
    retries: int = 2,
    threshold: int = 100,
    reset_seconds: float = 30.0,
) -> ResilientHttp:
    return ResilientHttp(
        client,
        name="fake",
        base_url=url,
        breaker=CircuitBreaker("fake", failure_threshold=threshold, reset_seconds=reset_seconds),
        retries=retries,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )


class TestRetries:
    @pytest.mark.parametrize("status", [502, 503, 504])
    async def test_transient_statuses_are_retried(
        self, upstream: FakeUpstream, client: httpx.AsyncClient, status: int
    ) -> None:
        upstream.then(Reply(status, b"{}"), Reply(status, b"{}"))

        response = await resilient(client, upstream.url).get("/status")

        assert response.status_code == 200
        assert upstream.requests == [("GET", "/status")] * 3

    async def test_dropped_connections_and_timeouts_are_retried(
        self, upstream: FakeUpstream
    ) -> None:
        upstream.then(Reply(drop=True), Reply(delay=SHORT_TIMEOUT * 3))

        async with create_http_client(timeout=SHORT_TIMEOUT) as client:
            response = await resilient(client, upstream.url).get("/status")

        assert response.status_code == 200
        assert upstream.count == 3

    async def test_retries_are_bounded(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        upstream.default = Reply(503, b"{}")

        with pytest.raises(UpstreamUnavailableError) as failed:
            await resilient(client, upstream.url, retries=3).get("/status")

        assert upstream.count == 4
        assert failed.value.status == 503

    async def test_a_refused_connection_is_retried_then_unavailable(
        self, client: httpx.AsyncClient
    ) -> None:
        http = resilient(client, f"http://127.0.0.1:{free_port()}")

        with pytest.raises(UpstreamUnavailableError):
            await http.get("/status")

    async def test_non_idempotent_methods_are_not_repeated(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        upstream.then(Reply(503, b"{}"))

        with pytest.raises(UpstreamUnavailableError):
            await resilient(client, upstream.url).request("POST", "/orders", json={"n": 1})

        assert upstream.requests == [("POST", "/orders")]

    async def test_client_errors_are_answers_not_failures(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        upstream.then(Reply(404, b"{}"))
        http = resilient(client, upstream.url, threshold=1)

        response = await http.get("/missing")

        assert response.status_code == 404
        assert upstream.count == 1
        assert state(http.breaker) is CircuitState.CLOSED


class TestCircuitBreaker:
    async def test_opens_refuses_without_calling_then_probes_and_closes(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        http = resilient(client, upstream.url, retries=0, threshold=3, reset_seconds=0.5)
        upstream.then(*[Reply(503, b"{}")] * 3)
        for _ in range(3):
            with pytest.raises(UpstreamUnavailableError):
                await http.get("/status")
        assert state(http.breaker) is CircuitState.OPEN

        # Every request of the process is refused at once, with no connection made.
        refusals = await asyncio.gather(
            *(http.get("/status") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(refusal, CircuitOpenError) for refusal in refusals)
        assert upstream.count == 3
        assert all(isinstance(r, CircuitOpenError) and r.retry_after >= 1 for r in refusals)

        await asyncio.sleep(0.6)
        probe = await http.get("/status")

        assert probe.status_code == 200
        assert state(http.breaker) is CircuitState.CLOSED
        assert (await http.get("/status")).status_code == 200
        assert upstream.count == 5

    async def test_a_failed_probe_opens_it_again(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        http = resilient(client, upstream.url, retries=0, threshold=1, reset_seconds=0.3)
        upstream.then(Reply(503, b"{}"), Reply(503, b"{}"))
        with pytest.raises(UpstreamUnavailableError):
            await http.get("/status")
        await asyncio.sleep(0.4)

        with pytest.raises(UpstreamUnavailableError):
            await http.get("/status")  # the probe fails

        assert state(http.breaker) is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await http.get("/status")
        assert upstream.count == 2

    async def test_an_open_circuit_stops_the_retries(
        self, upstream: FakeUpstream, client: httpx.AsyncClient
    ) -> None:
        upstream.default = Reply(503, b"{}")
        http = resilient(client, upstream.url, retries=5, threshold=2)

        with pytest.raises(CircuitOpenError):
            await http.get("/status")

        assert upstream.count == 2
