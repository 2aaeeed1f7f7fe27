"""Queries on items."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.repositories.base import Ordering, Repository, contains
from {{ cookiecutter.project_slug }}.schemas.item import ITEM_SORT_FIELDS
from {{ cookiecutter.project_slug }}.schemas.pagination import Sort

# Every field a client may sort by; each has an index (migration 0004) so no sort scans.
SORTABLE = {
    "created_at": Item.created_at,
    "updated_at": Item.updated_at,
    "title": Item.title,
}
assert set(SORTABLE) == set(ITEM_SORT_FIELDS)  # noqa: S101 - a drift between layers fails at import


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemFilter:
    """`owner_id=None` lists every owner's items."""

    owner_id: uuid.UUID | None = None
    text: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class ItemRepository(Repository[Item]):
    async def get(self, item_id: uuid.UUID) -> Item | None:
        return await self.session.get(Item, item_id)

    @staticmethod
    def ordering(sort: Sort) -> Ordering:
        return Ordering.of(sort, SORTABLE, Item.id)

    @staticmethod
    def _query(where: ItemFilter) -> Select[Item]:
        query = select(Item)
        if where.owner_id is not None:
            query = query.where(Item.owner_id == where.owner_id)
        if where.text:
            query = query.where(contains(Item.title, where.text))
        if where.created_after is not None:
            query = query.where(Item.created_at > where.created_after)
        if where.created_before is not None:
            query = query.where(Item.created_at < where.created_before)
        return query

    async def list_page(
        self, where: ItemFilter, sort: Sort, *, offset: int, limit: int
    ) -> tuple[Sequence[Item], int]:
        """One page in `sort` order, and the number of items matching `where`."""
        return await self.offset_page(
            self._query(where), self.ordering(sort), offset=offset, limit=limit
        )

    async def list_after(
        self, where: ItemFilter, sort: Sort, *, after: Sequence[Any] | None, limit: int
    ) -> tuple[Sequence[Item], list[Any] | None]:
        """Up to `limit` items after the keyset position `after`, and the next position."""
        return await self.keyset_page(
            self._query(where), self.ordering(sort), after=after, limit=limit
        )
