"""The outbox relay as a task: run by beat on a schedule and kicked after each commit."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.tasks.app import RELAY_OUTBOX, RETRY_TRANSIENT, run_service

log = get_logger(__name__)


@shared_task(name=RELAY_OUTBOX, bind=True, **RETRY_TRANSIENT)
def relay_outbox(self: Task[Any, Any]) -> int:
    """Deliver every due outbox event; several runs at once share the work, never an event."""
    delivered = run_service(self, lambda services, _: services.relay.drain())
    if delivered:
        log.info("outbox relay run", events=delivered)
    return delivered
