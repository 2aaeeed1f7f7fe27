"""Cursor pagination shared by list use cases: where a request continues, and the cursor that
continues after its page.

A cursor holds the sort and the keyset position of the last row served, signed and bound to
one resource (`scope`) by `CursorCodec`; the repository's `Ordering` turns the position back
into typed values.
"""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.core.errors import InvalidCursorError
from {{ cookiecutter.project_slug }}.schemas.pagination import (
    ListParams,
    Sort,
    format_sort,
    parse_sort,
)


def resume(codec: CursorCodec, scope: str, params: ListParams) -> tuple[Sort, object | None]:
    """The sort of this request and, given a cursor, the raw position it continues after."""
    if params.cursor is None:
        return params.effective_sort, None
    state = codec.decode(scope, params.cursor)
    try:
        sort, after = parse_sort(str(state["sort"]), params.sort_fields), state["after"]
    except (KeyError, ValueError) as exc:
        raise InvalidCursorError("the cursor is not one this service issued") from exc
    if params.requested_sort not in (None, sort):
        raise InvalidCursorError(
            f"the cursor continues sort={format_sort(sort)}; "
            "leave `sort` out or start again without a cursor"
        )
    return sort, after


def next_cursor(
    codec: CursorCodec, scope: str, sort: Sort, position: list[Any] | None
) -> str | None:
    """The cursor of the page after one that ended at `position`; `None` at the end."""
    if position is None:
        return None
    return codec.encode(scope, {"sort": format_sort(sort), "after": position})
