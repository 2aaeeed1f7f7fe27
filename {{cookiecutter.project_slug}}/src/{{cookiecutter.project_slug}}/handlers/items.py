"""Background processing of new items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.handlers import handles
from {{ cookiecutter.project_slug }}.services.item import ItemCreated

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

log = get_logger(__name__)


@handles(ItemCreated)
async def process_item(services: Container, uow: UnitOfWork, event: ItemCreated) -> None:
    processed = await services.items(uow).mark_processed(event.item_id)
    log.info("item processed", item_id=str(event.item_id), processed=processed)
