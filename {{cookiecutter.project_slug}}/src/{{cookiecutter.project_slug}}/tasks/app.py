"""The Celery application, configured from the same settings as the API.

`celery -A {{ cookiecutter.project_slug }}.tasks.app worker` imports this module. With no broker
configured (the embedded development default) tasks run eagerly in the calling process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from celery import Celery, Task, signals
from kombu import Connection

from {{ cookiecutter.project_slug }}.core.config import Settings, get_settings
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.tasks.runtime import close_runtime

BrokerCheck = Callable[[], Awaitable[None]]

TASK_MODULES = [
    "{{ cookiecutter.project_slug }}.tasks.users",
{%- if cookiecutter.include_example_domain == 'y' %}
    "{{ cookiecutter.project_slug }}.tasks.items",
{%- endif %}
]


def configure_celery(settings: Settings, app: Celery | None = None) -> BrokerCheck | None:
    """Point the Celery app at the settings' broker; returns a readiness check for it."""
    app = app or celery_app
    broker_url = settings.effective_broker_url
    app.conf.update(
        broker_url=broker_url or "memory://",
        task_always_eager=broker_url is None,
        task_default_queue=settings.celery_queue,
        task_eager_propagates=True,
        # Only JSON: pickle from a broker is remote code execution.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged after it ran, and requeued if its worker dies mid-task.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=300,
        task_soft_time_limit=240,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "heartbeat": {
                "task": "{{ cookiecutter.project_slug }}.heartbeat",
                "schedule": timedelta(minutes=5),
            },
        },
    )
    if broker_url is None:
        return None

    async def check_broker() -> None:
        def connect() -> None:
            with Connection(broker_url, connect_timeout=1.5) as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

        await asyncio.to_thread(connect)

    return check_broker


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("{{ cookiecutter.project_slug }}", include=TASK_MODULES)
    configure_celery(settings, app)
    return app


celery_app = create_celery_app(get_settings())

REQUEST_ID_HEADER = "request_id"


@signals.setup_logging.connect
def _configure_worker_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers: worker lines go
    # through the same structlog pipeline as the API's.
    settings = get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close_task_runtime(**_: Any) -> None:
    # Return pooled database connections instead of letting the process drop them mid-session.
    close_runtime()


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the enqueuing request's id to the task, so its log lines can be joined up."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if headers is not None and request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@signals.task_prerun.connect
def _bind_task_context(
    task_id: str | None = None, task: Task[Any, Any] | None = None, **_: Any
) -> None:
    structlog.contextvars.clear_contextvars()
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=task.name if task is not None else None, request_id=request_id
    )


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@celery_app.task(name="{{ cookiecutter.project_slug }}.heartbeat")
def heartbeat() -> str:
    """Proves beat and workers are connected; replace with the schedule your service needs."""
    return "ok"
