"""The circuit breaker's states: closed, open after N failures, one half-open probe, closed
again on its success."""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.core.errors import CircuitOpenError
from {{ cookiecutter.project_slug }}.core.resilience import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(circuit: CircuitBreaker) -> CircuitState:
    # A call, so mypy does not narrow the property between two checks.
    return circuit.state


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("test", failure_threshold=3, reset_seconds=10, clock=clock)


def fail(circuit: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        circuit.before_call()
        circuit.record_failure()


class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_only(self) -> None:
        circuit = breaker(Clock())
        fail(circuit, 2)
        circuit.before_call()
        circuit.record_success()  # a success in between starts the count again
        fail(circuit, 2)
        assert state(circuit) is CircuitState.CLOSED

        fail(circuit, 1)

        assert state(circuit) is CircuitState.OPEN
        with pytest.raises(CircuitOpenError) as refused:
            circuit.before_call()
        assert refused.value.retry_after == 10
        assert refused.value.status == 503

    def test_retry_after_counts_down(self) -> None:
        clock = Clock()
        circuit = breaker(clock)
        fail(circuit, 3)
        clock.now += 7.5

        with pytest.raises(CircuitOpenError) as refused:
            circuit.before_call()

        assert refused.value.retry_after == 3

    def test_half_open_lets_one_probe_through_and_closes_on_its_success(self) -> None:
        clock = Clock()
        circuit = breaker(clock)
        fail(circuit, 3)
        clock.now += 10

        assert state(circuit) is CircuitState.HALF_OPEN
        circuit.before_call()  # the probe
        with pytest.raises(CircuitOpenError) as refused:
            circuit.before_call()  # everyone else waits for its verdict
        assert refused.value.retry_after == 1
        circuit.record_success()

        assert state(circuit) is CircuitState.CLOSED
        circuit.before_call()

    def test_a_failed_probe_opens_the_circuit_for_another_period(self) -> None:
        clock = Clock()
        circuit = breaker(clock)
        fail(circuit, 3)
        clock.now += 10

        fail(circuit, 1)

        assert state(circuit) is CircuitState.OPEN
        clock.now += 9
        assert state(circuit) is CircuitState.OPEN
        clock.now += 1
        assert state(circuit) is CircuitState.HALF_OPEN

    def test_an_abandoned_probe_lets_the_next_call_probe(self) -> None:
        clock = Clock()
        circuit = breaker(clock)
        fail(circuit, 3)
        clock.now += 10
        circuit.before_call()

        circuit.abandon()

        circuit.before_call()
