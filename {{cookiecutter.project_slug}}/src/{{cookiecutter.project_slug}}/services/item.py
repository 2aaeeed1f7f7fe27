"""Item use cases. Items are visible and editable by their owner and by admins only.

"Admin" means the caller's effective permissions hold `items:admin` (`granted`, given by the
caller): an admin signed in with an API key scoped without it sees and changes only their own
items, like anyone else.

Reads of one item go through the cache (the row, whoever asks; access is checked after), and
every change invalidates it once committed, so a successful PATCH is never followed by a read of
the old item.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from functools import partial
from typing import ClassVar, NoReturn

from {{ cookiecutter.project_slug }}.core.cache import Cache, cached
from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.core.errors import (
    NotFoundError,
    PermissionDeniedError,
)
from {{ cookiecutter.project_slug }}.core.events import Event, EventPublisher
from {{ cookiecutter.project_slug }}.core.permissions import Permission, holds
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.item import ItemFilter, ItemRepository
from {{ cookiecutter.project_slug }}.schemas.item import (
    ItemCreate,
    ItemListParams,
    ItemRead,
    ItemUpdate,
)
from {{ cookiecutter.project_slug }}.schemas.pagination import CursorPage, Page
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.listing import next_cursor, resume
from {{ cookiecutter.project_slug }}.services.versioning import check_version, write_versioned

# Binds cursors to this resource: one issued by another list endpoint is refused here.
CURSOR_SCOPE = "items"


class ItemCreated(Event):
    """A new item exists; background processing hangs off this."""

    name: ClassVar[str] = "item.created"
    aggregate: ClassVar[str] = "item_id"

    item_id: uuid.UUID


def _sees_all(granted: frozenset[Permission]) -> bool:
    return holds(granted, [Permission.ITEMS_ADMIN])


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
        cursors: CursorCodec,
        cache: Cache,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._items = items
        self._events = events
        self._cursors = cursors
        self.cache = cache
        self._audit = audit

    async def create(self, owner: User, data: ItemCreate) -> Item:
        item = Item(owner_id=owner.id, title=data.title, description=data.description)
        await self._items.add(item)
        await self._events.publish(ItemCreated(item_id=item.id, actor_id=owner.id))
        self._audit.record(
            "item.create",
            actor=owner.id,
            resource="item",
            resource_id=item.id,
            changes=data.model_dump(),
        )
        return item

    async def get(self, actor: User, item_id: uuid.UUID, *, granted: frozenset[Permission]) -> Item:
        """The row itself, for changing it; reads go through `read`."""
        item = await self._items.get(item_id)
        # Someone else's item answers exactly like a missing one, so ids cannot be probed.
        if item is None or (item.owner_id != actor.id and not _sees_all(granted)):
            raise _missing(item_id)
        return item

    async def read(
        self, actor: User, item_id: uuid.UUID, *, granted: frozenset[Permission]
    ) -> ItemRead:
        item = await self._read_model(item_id)
        if item.owner_id != actor.id and not _sees_all(granted):
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

    async def _filter(
        self, actor: User, params: ItemListParams, granted: frozenset[Permission]
    ) -> ItemFilter:
        owner_id = params.owner_id
        if not _sees_all(granted):
            # Refused rather than ignored: a client asking for someone else's items must not
            # mistake its own for theirs.
            if owner_id is not None and owner_id != actor.id:
                await self._deny(actor, Permission.ITEMS_ADMIN)
            owner_id = actor.id
        return ItemFilter(
            owner_id=owner_id,
            text=params.q,
            created_after=params.created_after,
            created_before=params.created_before,
        )

    async def _deny(self, actor: User, permission: Permission) -> NoReturn:
        await self._audit.record_denial(actor.id, actor.role, [permission.value])
        raise PermissionDeniedError(
            f"listing other owners' items needs the {permission} permission"
        )

    async def list_page(
        self, actor: User, params: ItemListParams, *, granted: frozenset[Permission]
    ) -> Page[ItemRead]:
        """Offset pagination: one numbered page and the total."""
        page = params.page_params
        items, total = await self._items.list_page(
            await self._filter(actor, params, granted),
            params.effective_sort,
            offset=page.offset,
            limit=page.page_size,
        )
        return Page[ItemRead].build(
            [ItemRead.model_validate(item) for item in items], total=total, params=page
        )

    async def list_cursor(
        self, actor: User, params: ItemListParams, *, granted: frozenset[Permission]
    ) -> CursorPage[ItemRead]:
        """Cursor pagination: stable under inserts and deletes, no count."""
        where = await self._filter(actor, params, granted)
        sort, position = resume(self._cursors, CURSOR_SCOPE, params)
        after = None if position is None else self._items.ordering(sort).parse(position)
        items, last = await self._items.list_after(
            where, sort, after=after, limit=params.page_limit
        )
        return CursorPage[ItemRead](
            items=[ItemRead.model_validate(item) for item in items],
            next_cursor=next_cursor(self._cursors, CURSOR_SCOPE, sort, last),
        )

    async def update(
        self,
        actor: User,
        item_id: uuid.UUID,
        data: ItemUpdate,
        *,
        granted: frozenset[Permission],
        if_match: Collection[int] | None = None,
    ) -> Item:
        """Change fields; with `if_match`, only while the item is at one of those versions."""
        item = await self.get(actor, item_id, granted=granted)
        check_version(f"item {item.id}", item.version, if_match)
        for field, value in data.model_dump(exclude_unset=True).items():
            setattr(item, field, value)
        # The UPDATE carries `WHERE version = <version read>`: a concurrent change in between
        # makes it match nothing, so the check above cannot be raced.
        await write_versioned(self._items.flush(), f"item {item.id}", item.version, if_match)
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

    async def delete(
        self,
        actor: User,
        item_id: uuid.UUID,
        *,
        granted: frozenset[Permission],
        if_match: Collection[int] | None = None,
    ) -> None:
        item = await self.get(actor, item_id, granted=granted)
        check_version(f"item {item.id}", item.version, if_match)
        await write_versioned(self._items.delete(item), f"item {item.id}", item.version, if_match)
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
