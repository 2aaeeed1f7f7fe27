"""Pagination, sorting and the envelopes shared by list endpoints.

A list endpoint takes one query model derived from `ListParams`: offset pagination (`page`,
`page_size`) or cursor pagination (`cursor`, `limit`), and `sort` checked against the
resource's `sort_fields`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from {{ cookiecutter.project_slug }}.core.cursor import MAX_CURSOR_LENGTH

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# The largest page whose offset, (page - 1) * page_size, still fits PostgreSQL's bigint;
# beyond it the query would fail in the driver instead of answering 422.
MAX_PAGE = (2**63 - 1) // MAX_PAGE_SIZE

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool = False

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


Sort = tuple[SortKey, ...]


def parse_sort(value: str, allowed: Sequence[str]) -> Sort:
    """`-created_at,title` as sort keys; a field outside `allowed` is a `ValueError` naming them."""
    keys: list[SortKey] = []
    for part in value.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in allowed:
            raise ValueError(
                f"cannot sort by {name!r}; sort by {', '.join(allowed)}"
                " (comma-separated, `-` for descending)"
            )
        if any(key.field == name for key in keys):
            raise ValueError(f"{name!r} appears twice in the sort")
        keys.append(SortKey(name, descending))
    return tuple(keys)


def format_sort(sort: Sort) -> str:
    return ",".join(str(key) for key in sort)


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


class ListParams(BaseModel):
    """Query parameters of a list endpoint; subclasses add filters and set `sort_fields`."""

    # Unknown parameters are refused like unknown body fields: a typo must not go unnoticed.
    model_config = ConfigDict(extra="forbid")

    sort_fields: ClassVar[tuple[str, ...]] = ()
    default_sort: ClassVar[str] = ""

    page: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="Offset pagination.")
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)
    cursor: Annotated[str, Field(min_length=1, max_length=MAX_CURSOR_LENGTH)] | None = Field(
        default=None,
        description="Cursor pagination: `next_cursor` from the previous page.",
    )
    limit: int | None = Field(
        default=None, ge=1, le=MAX_PAGE_SIZE, description="Cursor pagination: rows per page."
    )
    sort: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="Comma-separated fields, `-` for descending."
    )

    @field_validator("sort")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sort(value, cls.sort_fields)
        return value

    @model_validator(mode="after")
    def _one_kind_of_pagination(self) -> Self:
        if self.uses_cursor and (self.page is not None or self.page_size is not None):
            raise ValueError("use either page/page_size or cursor/limit, not both")
        return self

    @property
    def uses_cursor(self) -> bool:
        return self.cursor is not None or self.limit is not None

    @property
    def requested_sort(self) -> Sort | None:
        return None if self.sort is None else parse_sort(self.sort, self.sort_fields)

    @property
    def effective_sort(self) -> Sort:
        return self.requested_sort or parse_sort(self.default_sort, self.sort_fields)

    @property
    def page_params(self) -> PageParams:
        return PageParams(page=self.page or 1, page_size=self.page_size or DEFAULT_PAGE_SIZE)

    @property
    def page_limit(self) -> int:
        return self.limit or DEFAULT_PAGE_SIZE


class Page(BaseModel, Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    page_size: int
    pages: int

    @classmethod
    def build(cls, items: Sequence[T], *, total: int, params: PageParams) -> Page[T]:
        return cls(
            items=items,
            total=total,
            page=params.page,
            page_size=params.page_size,
            pages=math.ceil(total / params.page_size) if total else 0,
        )


class CursorPage(BaseModel, Generic[T]):
    items: Sequence[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
