"""The example upstream: a service answering `GET /status` with `{"status": "..."}`.

A template for real integrations: one small class per upstream over `ResilientHttp`, turning
its answers into schemas and its failures into this service's errors.
"""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.resilience import CircuitBreaker
from {{ cookiecutter.project_slug }}.integrations.http import (
    ResilientHttp,
    UpstreamUnavailableError,
)
from {{ cookiecutter.project_slug }}.schemas.upstream import UpstreamStatus


class UpstreamClient:
    def __init__(self, http: ResilientHttp) -> None:
        self._http = http

    async def status(self) -> UpstreamStatus:
        response = await self._http.get("/status")
        if response.is_error:
            raise UpstreamUnavailableError(
                f"{self._http.name} answered {response.status_code}", retry_after=5
            )
        try:
            return UpstreamStatus.model_validate_json(response.content)
        except ValidationError as exc:
            raise UpstreamUnavailableError(f"{self._http.name} answered unexpectedly") from exc


def create_upstream_client(http: httpx.AsyncClient, settings: Settings) -> UpstreamClient | None:
    """The client over the process's HTTP client, or `None` when UPSTREAM_URL is unset."""
    if not settings.upstream_url:
        return None
    breaker = CircuitBreaker(
        "upstream",
        failure_threshold=settings.circuit_failure_threshold,
        reset_seconds=settings.circuit_reset_seconds,
    )
    return UpstreamClient(
        ResilientHttp(
            http,
            name="upstream",
            base_url=settings.upstream_url,
            breaker=breaker,
            retries=settings.http_retries,
        )
    )
