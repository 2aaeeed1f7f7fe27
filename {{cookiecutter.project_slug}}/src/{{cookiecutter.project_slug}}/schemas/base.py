"""Pieces every payload shares: strict request bodies, text the database can store, fields that
may be omitted but not nulled, and timestamps that carry their offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

T = TypeVar("T")


class RequestModel(BaseModel):
    """A request body. Unknown fields are refused with a 422 naming them, so a client's typo
    or a mass-assignment attempt (`"owner_id": ...`) is visible instead of silently dropped."""

    model_config = ConfigDict(extra="forbid")


# PostgreSQL text cannot hold NUL; sent anyway it would fail in the driver as a 500. (Lone
# surrogates, which JSON allows as "\ud800", are refused by pydantic as invalid strings.) A
# pattern rather than a validator: the rule shows in the OpenAPI schema, and length limits added
# with `Field(max_length=...)` stay plain string constraints with their plain messages.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
"""A string the database can store; give it the column's length with `Field(max_length=...)`."""


def _not_null(value: T | None) -> T:
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


def _without_null(schema: dict[str, Any]) -> None:
    # Document the field as its type alone: `null` is refused, so it is not part of the API,
    # and leaving the field out means "unchanged", not a default value.
    schema.pop("default", None)
    branches = [branch for branch in schema.pop("anyOf", []) if branch.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    else:
        schema["anyOf"] = branches


Omittable = Annotated[T | None, AfterValidator(_not_null), Field(json_schema_extra=_without_null)]
"""A PATCH field that may be left out (defaults to `None`, unset) but never sent as `null`,
for columns that cannot be NULL."""


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without an offset; the API always answers in UTC with one.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def _aware_as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # `0001-01-01T00:00:00+05:00` is valid input but has no UTC equivalent; unchecked, it
        # would fail in the database driver as a 500.
        raise ValueError("is out of range once converted to UTC") from None


AwareUtcDatetime = Annotated[AwareDatetime, AfterValidator(_aware_as_utc)]
"""A timestamp in a request: its offset is required (a naive one is ambiguous), kept as UTC."""
