"""The example outbound integration: an upstream's status, through timeouts, retries and a
circuit breaker."""

from __future__ import annotations

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.api.deps import CurrentUser, UpstreamServiceDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.schemas.upstream import UpstreamStatus

router = APIRouter(prefix="/upstream", tags=["upstream"], responses=problem_responses(401, 503))


@router.get("/status", response_model=UpstreamStatus)
async def get_upstream_status(_: CurrentUser, upstream: UpstreamServiceDep) -> UpstreamStatus:
    """The example upstream's status; 503 while it fails or its circuit is open."""
    return await upstream.status()
