"""Behaviour shared by repositories: inserts that map conflicts, and both kinds of pagination.

Repositories own queries and never commit; the unit of work does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, DateTime, Select, and_, func, literal, or_, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.exc import StaleDataError

from {{ cookiecutter.project_slug }}.core.errors import (
    ConflictError,
    InvalidCursorError,
    StaleVersionError,
)
from {{ cookiecutter.project_slug }}.db.session import savepoint
from {{ cookiecutter.project_slug }}.models.base import Base
from {{ cookiecutter.project_slug }}.schemas.pagination import Sort

ModelT = TypeVar("ModelT", bound=Base)


def contains(column: InstrumentedAttribute[Any], text: str) -> ColumnElement[bool]:
    """`column` contains `text`, in any case; `%`, `_` and `\\` in `text` match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def _adapter(column: InstrumentedAttribute[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(column.type.python_type)


# SQLite keeps timestamps as text, and the ones its own clock writes (`server_default=now()`)
# lack the fraction bound values carry: '... 06:39:30' sorts before '... 06:39:30.000000'. On
# SQLite, timestamps are therefore ordered and compared in one normalised form.
_SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%f"


def _comparable(dialect: str, column: InstrumentedAttribute[Any], value: Any = None) -> Any:
    """`column` (or, given, `value` bound as that column) as the expression sorts compare."""
    expression = column if value is None else literal(value, column.type)
    if dialect == "sqlite" and isinstance(column.type, DateTime):
        return func.strftime(_SQLITE_TIMESTAMP, expression)
    return expression


@dataclass(frozen=True, slots=True)
class Ordering:
    """The columns of a sort, each with its direction; the last one is unique (the primary key)."""

    columns: tuple[tuple[InstrumentedAttribute[Any], bool], ...]

    @classmethod
    def of(
        cls,
        sort: Sort,
        sortable: Mapping[str, InstrumentedAttribute[Any]],
        key: InstrumentedAttribute[Any],
    ) -> Ordering:
        # The primary key ends every sort, in the last key's direction, so rows with equal
        # sort values still have one fixed order and a keyset position is never ambiguous.
        columns = tuple((sortable[k.field], k.descending) for k in sort)
        return cls((*columns, (key, columns[-1][1] if columns else False)))

    def order_by(self, dialect: str) -> list[ColumnElement[Any]]:
        keys = [(_comparable(dialect, column), descending) for column, descending in self.columns]
        return [key.desc() if descending else key.asc() for key, descending in keys]

    def values_of(self, row: object) -> list[Any]:
        """The sort values of `row` as JSON values, for a cursor; `parse` reads them back."""
        return [
            _adapter(column).dump_python(getattr(row, column.key), mode="json")
            for column, _ in self.columns
        ]

    def after(self, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
        """Rows strictly after the row with sort `values`, in this order."""
        keys = [_comparable(dialect, column) for column, _ in self.columns]
        bounds = [
            _comparable(dialect, column, value)
            for (column, _), value in zip(self.columns, values, strict=True)
        ]
        directions = {descending for _, descending in self.columns}
        if len(directions) == 1:
            # One direction: a row comparison, which PostgreSQL answers from a matching index.
            row, bound = tuple_(*keys), tuple_(*bounds)
            return row < bound if directions.pop() else row > bound
        # Mixed directions: (a > x) OR (a = x AND b < y) OR ..., each key in its own direction.
        branches = []
        for index, (_, descending) in enumerate(self.columns):
            equal = [keys[n] == bounds[n] for n in range(index)]
            key, bound = keys[index], bounds[index]
            branches.append(and_(*equal, key < bound if descending else key > bound))
        return or_(*branches)

    def parse(self, values: object) -> list[Any]:
        """Sort values read back from a cursor, typed like their columns."""
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise InvalidCursorError("the cursor does not match this sort")
        try:
            return [
                _adapter(column).validate_python(value)
                for (column, _), value in zip(self.columns, values, strict=True)
            ]
        except (ValidationError, TypeError) as exc:
            raise InvalidCursorError("the cursor does not match this sort") from exc


class Repository(Generic[ModelT]):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, instance: ModelT, *, conflict: str = "already exists") -> ModelT:
        """Insert and flush; a unique-constraint violation becomes `ConflictError`.

        The flush runs in a savepoint so a conflict leaves the surrounding transaction usable.
        """
        try:
            async with savepoint(self.session):
                self.session.add(instance)
        except IntegrityError as exc:
            raise ConflictError(conflict) from exc
        return instance

    async def flush(self) -> None:
        """Write pending changes. Versioned rows are written `WHERE version = <the version
        read>`, so a row another transaction changed meanwhile raises `StaleVersionError`."""
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise StaleVersionError("changed by another request; read it again and retry") from exc

    async def refresh(self, instance: ModelT) -> None:
        """Reload columns the database computed (version counters, `onupdate` timestamps)."""
        await self.session.refresh(instance)

    async def delete(self, instance: ModelT) -> None:
        await self.session.delete(instance)
        await self.flush()

    async def offset_page(
        self, query: Select[ModelT], ordering: Ordering, *, offset: int, limit: int
    ) -> tuple[Sequence[ModelT], int]:
        """One page of `query` in `ordering`, and how many rows the whole query has."""
        dialect = self.session.get_bind().dialect.name
        rows = await self.session.scalars(
            query.order_by(*ordering.order_by(dialect)).offset(offset).limit(limit)
        )
        count = query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
        total = (await self.session.execute(count)).scalar_one()
        return rows.all(), total

    async def keyset_page(
        self,
        query: Select[ModelT],
        ordering: Ordering,
        *,
        after: Sequence[Any] | None,
        limit: int,
    ) -> tuple[Sequence[ModelT], list[Any] | None]:
        """Up to `limit` rows after the position `after`, and the position of the last one when
        more rows follow (`None` at the end)."""
        dialect = self.session.get_bind().dialect.name
        if after is not None:
            query = query.where(ordering.after(after, dialect))
        # One extra row says whether there is a next page without a count.
        rows = (
            await self.session.scalars(query.order_by(*ordering.order_by(dialect)).limit(limit + 1))
        ).all()
        if len(rows) <= limit:
            return rows, None
        page = rows[:limit]
        return page, ordering.values_of(page[-1])
