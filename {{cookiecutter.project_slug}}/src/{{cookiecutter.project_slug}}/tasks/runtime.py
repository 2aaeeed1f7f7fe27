"""Run async service code from synchronous Celery tasks.

Each worker thread keeps one event loop and one engine for its lifetime, so connection pools
are reused across tasks instead of being rebuilt (and leaked) per task.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.core.config import get_settings
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    create_session_maker,
    unit_of_work,
)

T = TypeVar("T")


class _Runtime:
    def __init__(self) -> None:
        settings = get_settings()
        self.runner = asyncio.Runner()
        self.engine: AsyncEngine = create_engine(
            settings.database_url,
            pool_size=2,
            application_name="{{ cookiecutter.project_slug }}-worker",
        )
        self.session_maker: SessionMaker = create_session_maker(self.engine)

    def close(self) -> None:
        self.runner.run(self.engine.dispose())
        self.runner.close()


_local = threading.local()


def run_in_unit_of_work(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in a transaction that commits on success and rolls back on error."""
    runtime: _Runtime | None = getattr(_local, "runtime", None)
    if runtime is None:
        runtime = _local.runtime = _Runtime()

    async def run() -> T:
        async with unit_of_work(runtime.session_maker) as uow:
            return await work(uow)

    return runtime.runner.run(run())


def close_runtime() -> None:
    runtime: _Runtime | None = getattr(_local, "runtime", None)
    if runtime is not None:
        runtime.close()
        _local.runtime = None
