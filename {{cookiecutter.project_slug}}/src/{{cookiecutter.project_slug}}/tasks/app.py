"""The Celery application, built from settings by `create_celery_app`.

Nothing here runs at import: the composition root builds the app the API publishes through, and
`{{ cookiecutter.project_slug }}.worker` builds the one a worker consumes with. Tasks are plain
functions registered with `shared_task`; they reach services through `run_service`, which runs
their async work in a unit of work on the event loop that owns the service container.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog
from celery import Celery, Task, shared_task, signals
from kombu import Connection
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import InterfaceError, OperationalError

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

T = TypeVar("T")
ServiceWork = Callable[["Container", UnitOfWork], Awaitable[T]]

# The Celery message header that carries the id of the HTTP request that enqueued a task.
TASK_REQUEST_ID_HEADER = "request_id"
HEARTBEAT = "{{ cookiecutter.project_slug }}.heartbeat"
RELAY_OUTBOX = "{{ cookiecutter.project_slug }}.outbox.relay"
PURGE_EXPIRED = "{{ cookiecutter.project_slug }}.maintenance.purge_expired"

# Errors worth retrying: the database or a network peer was briefly away. Anything else is a
# bug or bad data, which a retry would only repeat.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)
# Keyword arguments of `shared_task` for a task that retries transient errors with exponential
# backoff and jitter (1 s, 2 s, 4 s, ... capped, each randomised so retries do not stampede).
RETRY_TRANSIENT: dict[str, Any] = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}

TASK_RUNS = Counter(
    "celery_tasks",
    "Task runs by task name and outcome (success, failure, retry, ...).",
    ["task", "outcome"],
)
TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "How long task runs took, by task name.",
    ["task"],
)
# task id -> when it started, in this worker process; removed when it ends.
_task_started: dict[str, float] = {}


class ServiceRunner(Protocol):
    def run(self, work: ServiceWork[T]) -> T: ...


class TaskApp(Celery):
    """A Celery app that knows its settings and how its tasks reach the service container."""

    def __init__(self, settings: Settings) -> None:
        # Not the process-wide "current" app: tests and the API build several side by side.
        super().__init__("{{ cookiecutter.project_slug }}", set_as_current=False)
        self.settings = settings
        self._runner: ServiceRunner | None = None
        self._runner_pid = 0
        self._start_runner: Callable[[], ServiceRunner] | None = None
        self._runner_lock = threading.Lock()

    def use_runner(self, runner: ServiceRunner) -> None:
        """Run tasks on an existing container (the API's, when tasks run eagerly)."""
        self._runner, self._runner_pid = runner, os.getpid()

    def start_runner_on_demand(self, start: Callable[[], ServiceRunner]) -> None:
        """Build a container the first time a task needs one in each (forked) worker process."""
        self._start_runner = start

    def use_container(self, container: Callable[[], Container]) -> None:
        """Run tasks on a container owned by the running event loop (the API's, when eager)."""
        loop = asyncio.get_running_loop()
        self.start_runner_on_demand(lambda: LoopRunner(container(), loop))

    def run_service(self, work: ServiceWork[T]) -> T:
        with self._runner_lock:
            if self._runner is None or self._runner_pid != os.getpid():
                if self._start_runner is None:
                    raise RuntimeError("this Celery app has no service container to run tasks on")
                self.use_runner(self._start_runner())
            runner = self._runner
        assert runner is not None  # noqa: S101 - set just above
        return runner.run(work)


class LoopRunner:
    """Runs service work from a synchronous thread on the event loop that owns the container."""

    def __init__(self, container: Container, loop: asyncio.AbstractEventLoop) -> None:
        self._container = container
        self._loop = loop

    def run(self, work: ServiceWork[T]) -> T:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("service work submitted from its own event loop would deadlock")
        return asyncio.run_coroutine_threadsafe(self._in_unit_of_work(work), self._loop).result()

    async def _in_unit_of_work(self, work: ServiceWork[T]) -> T:
        async with self._container.unit_of_work() as uow:
            return await work(self._container, uow)


def run_service(task: Task[Any, Any], work: ServiceWork[T]) -> T:
    """Run `work(container, uow)` for `task`; commits on success, rolls back on error."""
    app = task.app
    if not isinstance(app, TaskApp):
        raise TypeError(f"task {task.name} is bound to a Celery app not built by create_celery_app")
    return app.run_service(work)


def task_modules() -> list[str]:
    """Every module of this package: a new task module is picked up without registration."""
    folder = str(Path(__file__).parent)
    return [f"{__package__}.{module.name}" for module in pkgutil.iter_modules([folder])]


def create_celery_app(settings: Settings) -> TaskApp:
    broker_url = settings.effective_broker_url
    app = TaskApp(settings)
    app.conf.update(
        include=task_modules(),
        broker_url=broker_url or "memory://localhost/",
        # No broker configured (the embedded development default): tasks run in-process.
        task_always_eager=broker_url is None,
        task_eager_propagates=True,
        task_default_queue=settings.celery_queue,
        # Only JSON: pickle from a broker is remote code execution.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged after it ran, and requeued if its worker dies mid-task.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The soft limit raises inside the task so it can clean up; the hard one kills it.
        task_soft_time_limit=settings.celery_task_soft_time_limit_seconds,
        task_time_limit=settings.celery_task_time_limit_seconds,
        # Tasks report through the database and logs; the few that keep a result expire it.
        task_ignore_result=True,
        result_expires=timedelta(seconds=settings.celery_result_expires_seconds),
        broker_connection_retry_on_startup=True,
        # Redis only: a task a dead worker took is handed out again after this long. It must
        # exceed the longest task plus its ETA/countdown, or a live task would run twice.
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout_seconds},
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "heartbeat": {"task": HEARTBEAT, "schedule": timedelta(minutes=5)},
            # The relay is also kicked after each commit that records events; this catches
            # what a lost kick, a retry's backoff or a re-driven event leaves due.
            "outbox-relay": {
                "task": RELAY_OUTBOX,
                "schedule": timedelta(seconds=settings.outbox_relay_interval_seconds),
                "options": {"expires": settings.outbox_relay_interval_seconds},
            },
            "purge-expired": {"task": PURGE_EXPIRED, "schedule": timedelta(hours=1)},
        },
    )
    for module in app.conf.include:
        importlib.import_module(module)
    return app


def broker_check(broker_url: str) -> Callable[[], Awaitable[None]]:
    """A readiness check that opens (and closes) one broker connection."""

    async def check_broker() -> None:
        def connect() -> None:
            with Connection(broker_url, connect_timeout=1.5) as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

        await asyncio.to_thread(connect)

    return check_broker


@signals.setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers: worker lines go
    # through the structlog pipeline the worker entry point configured.
    return


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the enqueuing request's id to the task, so its log lines can be joined up."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if headers is not None and request_id is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def _bind_task_context(
    task_id: str | None = None, task: Task[Any, Any] | None = None, **_: Any
) -> None:
    request_id = getattr(task.request, TASK_REQUEST_ID_HEADER, None) if task else None
    # Eager tasks run inside the request's context: keep its request id.
    request_id = request_id or structlog.contextvars.get_contextvars().get("request_id")
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=task.name if task is not None else None, request_id=request_id
    )


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.unbind_contextvars("task_id", "task", "request_id")


@signals.task_prerun.connect
def _start_task_clock(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _task_started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _record_task_outcome(
    task_id: str | None = None,
    task: Task[Any, Any] | None = None,
    state: str | None = None,
    **_: Any,
) -> None:
    """Count each run by its final state and time it; runs on the worker that ran it."""
    name = task.name if task is not None else "unknown"
    TASK_RUNS.labels(task=name, outcome=(state or "unknown").lower()).inc()
    started = _task_started.pop(task_id, None) if task_id is not None else None
    if started is not None:
        TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


@shared_task(name=HEARTBEAT)
def heartbeat() -> str:
    """Proves beat and workers are connected; replace with the schedule your service needs."""
    return "ok"
