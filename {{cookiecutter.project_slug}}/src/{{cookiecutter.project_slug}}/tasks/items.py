"""Background processing of new items."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task
from sqlalchemy.exc import OperationalError

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.services.item import ItemCreated
from {{ cookiecutter.project_slug }}.tasks.app import run_service, subscribe

PROCESS_ITEM = "{{ cookiecutter.project_slug }}.items.process_item"

log = get_logger(__name__)


@shared_task(
    name=PROCESS_ITEM,
    bind=True,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def process_item(self: Task[Any, Any], item_id: str) -> bool:
    processed = run_service(
        self, lambda services, uow: services.items(uow).mark_processed(uuid.UUID(item_id))
    )
    log.info("item processed", item_id=item_id, processed=processed)
    return processed


subscribe(ItemCreated, PROCESS_ITEM)
