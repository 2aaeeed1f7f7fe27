"""Use cases over the example upstream: where a real service would combine its answer with
its own data."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.integrations.upstream import UpstreamClient
from {{ cookiecutter.project_slug }}.schemas.upstream import UpstreamStatus

# Reported while UPSTREAM_URL is unset: nothing is wrong with this service, and nothing to ask.
UNCONFIGURED = UpstreamStatus(status="unconfigured")


class UpstreamService:
    def __init__(self, upstream: UpstreamClient | None) -> None:
        self._upstream = upstream

    async def status(self) -> UpstreamStatus:
        if self._upstream is None:
            return UNCONFIGURED
        return await self._upstream.status()
