"""Liveness and readiness probes.

`live` touches nothing, so a slow dependency never gets the process restarted; `ready` checks
each dependency with a short timeout and names the ones that fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from {{ cookiecutter.project_slug }}.api.deps import ContainerDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.db.checks import CheckFailedError

CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(prefix="/health", tags=["health"])


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    checks: dict[str, CheckResult] = Field(default_factory=dict)


@router.get("/live", response_model=Health)
async def live() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses=problem_responses(503))
async def ready(container: ContainerDep) -> Health:
    """Every dependency answers within its timeout."""
    names = list(container.checks)
    outcomes = await asyncio.gather(*(_run(container.checks[name]) for name in names))
    results = dict(zip(names, outcomes, strict=True))
    failed = [name for name, result in results.items() if result.status == "failed"]
    if failed:
        raise ServiceUnavailableError(
            f"not ready: {', '.join(failed)} failed",
            retry_after=5,
            checks={name: result.model_dump() for name, result in results.items()},
        )
    return Health(status="ok", checks=results)


async def _run(check: Callable[[], Awaitable[object]]) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except Exception as exc:
        if isinstance(exc, CheckFailedError):
            error = str(exc)
        else:
            error = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return CheckResult(status="failed", latency_ms=_ms_since(started), error=error)
    return CheckResult(status="ok", latency_ms=_ms_since(started))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
