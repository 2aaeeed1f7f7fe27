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

from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver, parse_networks
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.errors import PermissionDeniedError


@functools.cache
def http_metrics() -> Callable[[metrics.Info], None]:
    """The HTTP request metrics (labelled by route template), created once per process.

    The instrumentator registers its metrics when an app is instrumented and, finding them
    registered by an earlier app in the same process (tests build many), silently records
    nothing for the later one; sharing one set keeps every app counting.
    """
    instrumentation = metrics.default()
    if instrumentation is None:  # pragma: no cover - only if something else registered them
        raise RuntimeError("the HTTP metrics are already registered by someone else")
    return instrumentation


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
