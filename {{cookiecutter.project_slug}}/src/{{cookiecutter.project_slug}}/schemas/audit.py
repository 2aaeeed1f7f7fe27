"""Audit entries as the admin API shows them, and the keyset cursor that pages through them."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from {{ cookiecutter.project_slug }}.schemas.base import UtcDatetime

MAX_AUDIT_PAGE = 100


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: UtcDatetime
    actor_id: uuid.UUID | None
    action: str
    resource: str
    resource_id: str | None
    changes: dict[str, JsonValue]
    request_id: str | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: Sequence[AuditEntryRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


def encode_cursor(entry_id: int) -> str:
    """Opaque to clients: the id of the last entry shown, base64url-encoded."""
    return base64.urlsafe_b64encode(str(entry_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The id a cursor carries, or None when it is not one this service issued."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text.isdigit():
        return None
    entry_id = int(text)
    # Beyond bigint the query would fail in the driver instead of answering 422.
    return entry_id if entry_id < 2**63 else None
