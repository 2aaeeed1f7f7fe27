"""Use cases over the example upstream: where a real service would combine its answer with
its own data. Unconfigured, it answers 503 rather than failing at start-up."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.integrations.upstream import UpstreamClient
from {{ cookiecutter.project_slug }}.schemas.upstream import UpstreamStatus


class UpstreamService:
    def __init__(self, upstream: UpstreamClient | None) -> None:
        self._upstream = upstream

    async def status(self) -> UpstreamStatus:
        if self._upstream is None:
            raise ServiceUnavailableError("UPSTREAM_URL is not configured", retry_after=60)
        return await self._upstream.status()
