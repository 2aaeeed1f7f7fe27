"""HTTP metrics, and who may read /metrics: Prometheus on the private network, not the world.

The endpoint names every route, status and rate-limit rule; it stays off the public internet
unless METRICS_ALLOWED_NETWORKS says otherwise. The client address is found the way the rate
limiter finds it (X-Forwarded-For believed only from TRUSTED_PROXIES).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from prometheus_fastapi_instrumentator import metrics
from starlette.types import Scope

from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver, parse_networks
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import PermissionDeniedError
from {{ cookiecutter.project_slug }}.middleware.request_context import RecordRequest

# Scraping the metrics is not traffic worth measuring.
UNMEASURED_ROUTES = frozenset({"/metrics"})


# Wide enough for a slow database call, fine enough below 100 ms where most requests fall.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@functools.cache
def http_metrics() -> RecordRequest:
    """Records a request in the HTTP metrics: a counter and a latency histogram, each labelled
    by route template, method and status class. Created once per process.

    The instrumentator's own middleware matches every route again on each request to find the
    template, and records five series (with two latency histograms and two size summaries): 15%
    of the server's time on `/health/live`. The request-context middleware knows the template
    already and calls this instead; the series keep the instrumentator's names and labels.
    The instrumentator registers its metrics once: tests build many apps in one process, and a
    second registration would leave the later apps counting nothing.
    """
    requests = metrics.requests()
    latency = metrics.latency(buckets=LATENCY_BUCKETS)
    if requests is None or latency is None:  # pragma: no cover - only if registered elsewhere
        raise RuntimeError("the HTTP metrics are already registered by someone else")

    def record(scope: Scope, route: str | None, status: int, seconds: float) -> None:
        if route in UNMEASURED_ROUTES:
            return
        info = metrics.Info(
            request=Request(scope),
            response=None,
            method=scope["method"],
            # Unmatched paths share one series: ids in unknown URLs must not add series.
            modified_handler=route or "none",
            modified_status=f"{status // 100}xx",
            modified_duration=seconds,
        )
        requests(info)
        latency(info)

    return record


def require_metrics_access(settings: Settings) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency that refuses (403) clients outside `METRICS_ALLOWED_NETWORKS`."""
    networks = parse_networks(settings.metrics_allowed_networks)
    resolver = ClientAddressResolver(settings.trusted_proxies)

    async def check(request: Request) -> None:
        address = resolver.client_address(request.scope)
        if address is None or not any(address in network for network in networks):
            raise PermissionDeniedError(
                "metrics are readable only from the networks in METRICS_ALLOWED_NETWORKS"
            )

    return check
