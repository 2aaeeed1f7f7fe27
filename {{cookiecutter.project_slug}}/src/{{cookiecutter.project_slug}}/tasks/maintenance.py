"""Periodic clean-up of records that outlive their use.

Revoked tokens, refresh-token families and failed-login counters need nothing here: both the
Redis and the in-process stores expire each entry with the token or window it is about.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.tasks.app import PURGE_EXPIRED, RETRY_TRANSIENT, run_service

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

log = get_logger(__name__)


@shared_task(name=PURGE_EXPIRED, bind=True, **RETRY_TRANSIENT)
def purge_expired(self: Task[Any, Any]) -> dict[str, int]:
    """Delete expired records; each purge is idempotent, so a redelivered run is harmless."""

    async def purge(services: Container, uow: UnitOfWork) -> dict[str, int]:
        retention = timedelta(seconds=services.settings.outbox_retention_seconds)
        return {
            "outbox_events": await services.relay.purge_sent(retention),
            "idempotency_records": await services.idempotency(uow).purge_expired(),
        }

    purged = run_service(self, purge)
    log.info("expired records purged", **purged)
    return purged
