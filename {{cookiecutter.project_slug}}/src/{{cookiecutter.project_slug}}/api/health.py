"""Liveness and readiness probes.

`live` touches nothing, so a slow dependency never gets the process restarted; `ready` checks
each dependency with a short timeout and names the ones that fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.db.migrate import database_revisions
from {{ cookiecutter.project_slug }}.db.session import SessionMaker

CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(prefix="/health", tags=["health"])


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    checks: dict[str, CheckResult] = {}


@router.get("/live", response_model=Health)
async def live() -> Health:
    """The process is up and serving."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"description": "A check failed"}})
async def ready(request: Request) -> Health:
    """Every dependency answers within its timeout."""
    checks: dict[str, Callable[[], Awaitable[object]]] = {}
    session_maker: SessionMaker = request.state.session_maker
    checks["database"] = lambda: _ping_database(session_maker)
    heads: frozenset[str] = request.state.migration_heads
    checks["migrations"] = lambda: _check_migrations(session_maker, heads)
    redis = getattr(request.state, "redis", None)
    if redis is not None:
        checks["redis"] = redis.ping
    broker_check = getattr(request.state, "broker_check", None)
    if broker_check is not None:
        checks["broker"] = broker_check

    names = list(checks)
    results = dict(zip(names, await asyncio.gather(*(_run(checks[n]) for n in names)), strict=True))
    failed = [name for name, result in results.items() if result.status == "failed"]
    if failed:
        raise ServiceUnavailableError(
            f"not ready: {', '.join(failed)} failed",
            retry_after=5,
            checks={name: result.model_dump() for name, result in results.items()},
        )
    return Health(status="ok", checks=results)


async def _ping_database(session_maker: SessionMaker) -> None:
    async with session_maker() as session:
        await session.execute(text("SELECT 1"))


class CheckFailedError(Exception):
    """A check failure whose message is safe to show (no addresses, SQL or stack)."""


async def _check_migrations(session_maker: SessionMaker, heads: frozenset[str]) -> None:
    # A replica whose code is ahead of the schema must not take traffic until `db upgrade` ran.
    async with session_maker() as session:
        connection = await session.connection()
        current = await database_revisions(connection)
    if current != heads:
        raise CheckFailedError(
            f"database at {', '.join(sorted(current)) or 'no revision'}, "
            f"code expects {', '.join(sorted(heads))}"
        )


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
