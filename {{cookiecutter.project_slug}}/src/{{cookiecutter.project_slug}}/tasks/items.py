"""Background processing of new items."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import OperationalError

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.services.item import ItemService
from {{ cookiecutter.project_slug }}.tasks.app import celery_app
from {{ cookiecutter.project_slug }}.tasks.runtime import run_in_unit_of_work

log = get_logger(__name__)


async def process(uow: UnitOfWork, item_id: uuid.UUID) -> bool:
    return await ItemService(uow, ItemRepository(uow.session)).mark_processed(item_id)


@celery_app.task(
    name="{{ cookiecutter.project_slug }}.items.process_item",
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def process_item(item_id: str) -> bool:
    processed = run_in_unit_of_work(lambda uow: process(uow, uuid.UUID(item_id)))
    log.info("item processed", item_id=item_id, processed=processed)
    return processed


class CeleryItemNotifier:
    """`ItemNotifier` that hands follow-ups to Celery."""

    def item_created(self, item_id: uuid.UUID) -> None:
        process_item.delay(str(item_id))
