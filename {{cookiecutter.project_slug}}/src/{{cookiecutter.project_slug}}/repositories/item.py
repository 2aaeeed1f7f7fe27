"""Queries on items."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.repositories.base import Repository


class ItemRepository(Repository[Item]):
    async def get(self, item_id: uuid.UUID) -> Item | None:
        return await self.session.get(Item, item_id)

    async def list_page(
        self, *, owner_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[Sequence[Item], int]:
        """One page, newest first, and the total; `owner_id=None` lists every owner's items."""
        query = select(Item)
        count = select(func.count()).select_from(Item)
        if owner_id is not None:
            query = query.where(Item.owner_id == owner_id)
            count = count.where(Item.owner_id == owner_id)
        # `id` breaks ties so pages never overlap when timestamps collide.
        query = query.order_by(Item.created_at.desc(), Item.id.desc()).offset(offset).limit(limit)
        items = (await self.session.scalars(query)).all()
        total = (await self.session.execute(count)).scalar_one()
        return items, total
