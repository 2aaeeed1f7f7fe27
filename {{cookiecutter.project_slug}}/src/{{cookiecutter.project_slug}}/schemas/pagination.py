"""Pagination envelopes shared by list endpoints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

MAX_PAGE_SIZE = 100
# The largest page whose offset, (page - 1) * page_size, still fits PostgreSQL's bigint;
# beyond it the query would fail in the driver instead of answering 422.
MAX_PAGE = (2**63 - 1) // MAX_PAGE_SIZE

T = TypeVar("T")


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


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
