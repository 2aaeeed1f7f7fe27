"""Item use cases. Items are visible and editable by their owner and by admins only.

Reads of one item go through the cache (the row, whoever asks; access is checked after), and
every change invalidates it once committed, so a successful PATCH is never followed by a read of
the old item.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial

from {{ cookiecutter.project_slug }}.core.cache import Cache, cached
from {{ cookiecutter.project_slug }}.core.errors import NotFoundError
from {{ cookiecutter.project_slug }}.core.events import Event, EventPublisher
from {{ cookiecutter.project_slug }}.core.permissions import Permission, is_granted
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.schemas.item import ItemCreate, ItemRead, ItemUpdate
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams
from {{ cookiecutter.project_slug }}.services.audit import AuditLog


class ItemCreated(Event):
    """A new item exists; background processing hangs off this."""

    item_id: uuid.UUID


def _sees_all(actor: User) -> bool:
    return is_granted(actor.role, [Permission.ITEMS_ADMIN])


def item_tag(item_id: uuid.UUID) -> str:
    """The cache tag of everything derived from one item."""
    return f"item:{item_id}"


def _missing(item_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"item {item_id} does not exist")


class ItemService:
    def __init__(
        self,
        uow: UnitOfWork,
        items: ItemRepository,
        events: EventPublisher,
        cache: Cache,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._items = items
        self._events = events
        self.cache = cache
        self._audit = audit

    async def create(self, owner: User, data: ItemCreate) -> Item:
        item = Item(owner_id=owner.id, title=data.title, description=data.description)
        await self._items.add(item)
        self._uow.after_commit(partial(self._events.publish, ItemCreated(item_id=item.id)))
        self._audit.record(
            "item.create",
            actor=owner.id,
            resource="item",
            resource_id=item.id,
            changes=data.model_dump(),
        )
        return item

    async def get(self, actor: User, item_id: uuid.UUID) -> Item:
        """The row itself, for changing it; reads go through `read`."""
        item = await self._items.get(item_id)
        # Someone else's item answers exactly like a missing one, so ids cannot be probed.
        if item is None or (item.owner_id != actor.id and not _sees_all(actor)):
            raise _missing(item_id)
        return item

    async def read(self, actor: User, item_id: uuid.UUID) -> ItemRead:
        item = await self._read_model(item_id)
        if item.owner_id != actor.id and not _sees_all(actor):
            raise _missing(item_id)
        return item

    @cached(
        ItemRead,
        key=lambda item_id: f"item:v1:{item_id}",
        tags=lambda item_id: [item_tag(item_id)],
    )
    async def _read_model(self, item_id: uuid.UUID) -> ItemRead:
        item = await self._items.get(item_id)
        if item is None:
            raise _missing(item_id)
        return ItemRead.model_validate(item)

    def _invalidate_after_commit(self, item_id: uuid.UUID) -> None:
        # After, not before: a read between an early invalidation and the commit would cache
        # the old row again. Entries record their tags' tokens, so one computed from the old
        # row and stored after this runs is never served either.
        self._uow.after_commit(partial(self.cache.invalidate_tags, item_tag(item_id)))

    async def list_page(self, actor: User, params: PageParams) -> Page[ItemRead]:
        owner_id = None if _sees_all(actor) else actor.id
        items, total = await self._items.list_page(
            owner_id=owner_id, offset=params.offset, limit=params.page_size
        )
        return Page[ItemRead].build(
            [ItemRead.model_validate(item) for item in items], total=total, params=params
        )

    async def update(self, actor: User, item_id: uuid.UUID, data: ItemUpdate) -> Item:
        item = await self.get(actor, item_id)
        for field, value in data.model_dump(exclude_unset=True).items():
            setattr(item, field, value)
        await self._items.flush()
        # The row's version and updated_at are set by the database; read them back.
        await self._items.refresh(item)
        self._invalidate_after_commit(item.id)
        self._audit.record(
            "item.update",
            actor=actor.id,
            resource="item",
            resource_id=item.id,
            changes=data.model_dump(exclude_unset=True),
        )
        return item

    async def delete(self, actor: User, item_id: uuid.UUID) -> None:
        item = await self.get(actor, item_id)
        await self._items.delete(item)
        self._invalidate_after_commit(item.id)
        self._audit.record(
            "item.delete",
            actor=actor.id,
            resource="item",
            resource_id=item_id,
            changes={"title": item.title},
        )

    async def mark_processed(self, item_id: uuid.UUID) -> bool:
        """Background processing of a new item; `False` when a redelivery finds it done."""
        item = await self._items.get(item_id)
        if item is None or item.processed_at is not None:
            return False
        item.processed_at = datetime.now(UTC)
        await self._items.flush()
        self._invalidate_after_commit(item.id)
        return True
