"""Queries on users."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.project_slug }}.core.errors import ConflictError
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.base import Ordering, Repository


class UserRepository(Repository[User]):
    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.lower()))
        return result.scalar_one_or_none()

    async def list_page(self, *, offset: int, limit: int) -> tuple[Sequence[User], int]:
        """Oldest first, and the number of users."""
        ordering = Ordering(((User.created_at, False), (User.id, False)))
        return await self.offset_page(select(User), ordering, offset=offset, limit=limit)

    async def flush_unique(self, *, conflict: str) -> None:
        """Flush changes; a unique-constraint violation (a concurrent taker) is a conflict."""
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc
