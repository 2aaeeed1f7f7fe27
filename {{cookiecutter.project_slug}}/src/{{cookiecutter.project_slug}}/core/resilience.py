"""A circuit breaker: stop calling an upstream that keeps failing, and try it again later.

Closed: calls go through; `failure_threshold` consecutive failures open the circuit. Open: every
call is refused at once with `CircuitOpenError` (503 with `Retry-After` = the time left) for
`reset_seconds`. Half-open: then one call, the probe, goes through while others are still
refused; its success closes the circuit, its failure opens it again for another period.

One breaker per upstream, shared by every request of the process (the container owns it); each
process learns about an upstream's health on its own, which is what a breaker wants: it
protects this process's requests from waiting on a dead upstream.

Written here rather than taken from a library: aiobreaker has had no release in years, and
purgatory, which is maintained, brings its own message bus and storage layer for what is a
small state machine, and its open-circuit error does not say when to retry, which the
`Retry-After` header needs.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from {{ cookiecutter.project_slug }}.core.errors import CircuitOpenError
from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)


class CircuitState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


CIRCUIT_STATE = Gauge(
    "circuit_breaker_state",
    "State of each outbound circuit: 0 closed, 1 half-open, 2 open.",
    ["circuit"],
    multiprocess_mode="max",
)
CIRCUIT_REJECTIONS = Counter(
    "circuit_breaker_rejections_total",
    "Calls refused without trying because the circuit was open.",
    ["circuit"],
)


class CircuitBreaker:
    """`before_call()` then `record_success()` or `record_failure()` around each attempt.

    No lock is needed: the state changes between awaits only, on one event loop.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._publish()

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def before_call(self) -> None:
        """Raise `CircuitOpenError` unless this call may go to the upstream."""
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            self._publish()
            return
        CIRCUIT_REJECTIONS.labels(self.name).inc()
        raise CircuitOpenError(
            f"{self.name} is failing; calls to it are paused",
            retry_after=self._retry_after(),
        )

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("circuit closed", circuit=self.name)
        self._failures = 0
        self._opened_at = None
        self._probing = False
        self._publish()

    def record_failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            if self._opened_at is None or self._probing:
                log.warning("circuit opened", circuit=self.name, failures=self._failures)
            self._opened_at = self._clock()
            self._probing = False
        self._publish()

    def abandon(self) -> None:
        """The call ended with no verdict (it was cancelled): another probe may go."""
        self._probing = False

    def _retry_after(self) -> int:
        if self._opened_at is None:
            return 1
        left = self._reset_seconds - (self._clock() - self._opened_at)
        # Half-open with a probe under way: the answer is moments away.
        return max(1, math.ceil(left))

    def _publish(self) -> None:
        CIRCUIT_STATE.labels(self.name).set(self.state)
