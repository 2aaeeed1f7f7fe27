"""Behaviour shared by repositories."""

from __future__ import annotations

from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.core.errors import ConflictError
from {{ cookiecutter.project_slug }}.models.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class Repository(Generic[ModelT]):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, instance: ModelT, *, conflict: str = "already exists") -> ModelT:
        """Insert and flush; a unique-constraint violation becomes `ConflictError`.

        The flush runs in a savepoint so a conflict leaves the surrounding transaction usable.
        """
        try:
            async with self.session.begin_nested():
                self.session.add(instance)
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc
        return instance

    async def flush(self) -> None:
        await self.session.flush()

    async def refresh(self, instance: ModelT) -> None:
        """Reload columns the database computed (version counters, `onupdate` timestamps)."""
        await self.session.refresh(instance)

    async def delete(self, instance: ModelT) -> None:
        await self.session.delete(instance)
        await self.session.flush()
