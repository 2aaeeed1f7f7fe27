"""Celery's entry point: `celery -A {{ cookiecutter.project_slug }}.worker worker` (or `beat`,
`inspect`, ...).

Importing this module builds nothing. Celery asks for `app` at start-up, and only then are the
settings read and the app created. Each worker process builds its own service container the
first time a task needs one, on an event loop of its own that lives as long as the process.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import AsyncExitStack
from typing import Any

from celery import signals

from {{ cookiecutter.project_slug }}.container import build_container
from {{ cookiecutter.project_slug }}.core.config import Settings, get_settings
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.core.metrics import clear_multiprocess_dir, serve_metrics
from {{ cookiecutter.project_slug }}.core.telemetry import instrument_worker
from {{ cookiecutter.project_slug }}.tasks.app import LoopRunner, TaskApp, create_celery_app


class ContainerThread:
    """An event loop in a daemon thread that owns one container for the process's tasks."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="service-container", daemon=True
        )
        self._thread.start()
        self._stack = AsyncExitStack()
        container = asyncio.run_coroutine_threadsafe(
            self._stack.enter_async_context(build_container(settings, role="worker")), self._loop
        ).result()
        self.runner = LoopRunner(container, self._loop)

    def close(self) -> None:
        # Return pooled database connections instead of letting the process drop them mid-session.
        asyncio.run_coroutine_threadsafe(self._stack.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def create_worker_app() -> TaskApp:
    settings = get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    instrument_worker()  # task spans from the first task on, when tracing is on
    app = create_celery_app(settings)

    started: list[ContainerThread] = []

    def start() -> LoopRunner:
        started.append(ContainerThread(settings))
        return started[-1].runner

    def close(**_: Any) -> None:
        while started:
            started.pop().close()

    app.start_runner_on_demand(start)

    def start_metrics(**_: Any) -> None:
        # In the worker's main process, before the pool forks the children that run tasks.
        clear_multiprocess_dir()
        if settings.worker_metrics_port is not None:
            serve_metrics(settings.worker_metrics_port)

    signals.worker_init.connect(start_metrics, weak=False)
    # In a prefork pool each child closes its own container; `worker_shutdown` covers the rest.
    signals.worker_process_shutdown.connect(close, weak=False)
    signals.worker_shutdown.connect(close, weak=False)
    return app


def __getattr__(name: str) -> TaskApp:
    # PEP 562: Celery's `-A` looks `app` up on this module; build it on first use, once.
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = create_worker_app()
    globals()["app"] = app
    return app
