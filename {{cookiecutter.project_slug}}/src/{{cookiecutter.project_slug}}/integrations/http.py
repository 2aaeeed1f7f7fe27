"""Outbound HTTP that fails fast and recovers: timeouts, retries and a circuit breaker.

`create_http_client` builds the one `httpx.AsyncClient` of the process (the container owns and
closes it; its connection pool is shared by every upstream). `ResilientHttp` wraps it for one
upstream:

- every attempt has the client's timeouts, and goes through the upstream's `CircuitBreaker`;
- transient failures (connection errors, timeouts, 502/503/504) of idempotent methods are
  retried with exponential backoff and full jitter (tenacity), at most `retries` times;
  anything else (a 4xx, a POST) is the caller's to handle, never repeated behind its back;
- each failed attempt counts against the breaker; an open circuit raises `CircuitOpenError`
  before any connection is made, and a transient failure that outlasts the retries raises
  `UpstreamUnavailableError`: both are 503 problems with `Retry-After`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.resilience import CircuitBreaker

log = get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# Connection refused or reset, DNS failures, timeouts and a peer closing mid-response.
TRANSIENT_ERRORS = (httpx.TransportError,)

OUTBOUND_ATTEMPTS = Counter(
    "http_client_attempts_total",
    "Outbound HTTP attempts by upstream and outcome: ok, transient (retryable) or error.",
    ["upstream", "outcome"],
)


class UpstreamUnavailableError(ServiceUnavailableError):
    code = "upstream-unavailable"
    title = "Upstream unavailable"


class TransientStatusError(Exception):
    """A 502, 503 or 504: the upstream or a proxy in front of it is having a moment."""

    def __init__(self, response: httpx.Response) -> None:
        request = response.request
        super().__init__(f"{request.method} {request.url}: {response.status_code}")
        self.response = response


def create_http_client(*, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        # An upstream that moves should be reconfigured, not followed silently.
        follow_redirects=False,
    )


class ResilientHttp:
    """One upstream: a base URL, its circuit breaker and its retry policy."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        name: str,
        base_url: str,
        breaker: CircuitBreaker,
        retries: int = 2,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self.breaker = breaker
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._retries = retries
        self._wait = wait_random_exponential(multiplier=backoff_seconds, max=max_backoff_seconds)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The upstream's answer (any status but a transient one), or a 503 error."""
        method = method.upper()
        attempts = self._retries + 1 if method in IDEMPOTENT_METHODS else 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception_type((*TRANSIENT_ERRORS, TransientStatusError)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(method, f"{self._base_url}{path}", **kwargs)
        except (*TRANSIENT_ERRORS, TransientStatusError) as exc:
            raise UpstreamUnavailableError(
                f"{self.name} did not answer in time or answered with an error",
                retry_after=1,
            ) from exc
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def _attempt(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.breaker.before_call()
        try:
            response = await self._client.request(method, url, **kwargs)
        except TRANSIENT_ERRORS:
            OUTBOUND_ATTEMPTS.labels(self.name, "transient").inc()
            self.breaker.record_failure()
            raise
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        except BaseException:
            OUTBOUND_ATTEMPTS.labels(self.name, "error").inc()
            self.breaker.abandon()
            raise
        if response.status_code in TRANSIENT_STATUSES:
            OUTBOUND_ATTEMPTS.labels(self.name, "transient").inc()
            self.breaker.record_failure()
            raise TransientStatusError(response)
        OUTBOUND_ATTEMPTS.labels(self.name, "ok").inc()
        # The upstream answered: even a 4xx shows it is up.
        self.breaker.record_success()
        return response

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning(
            "outbound request failed; retrying",
            upstream=self.name,
            attempt=state.attempt_number,
            error=repr(error),
        )
