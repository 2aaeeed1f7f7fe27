"""The `audit_log` table: who did what to which resource, append-only and hash-chained.

Rows are only ever inserted (a database trigger refuses `UPDATE` and `DELETE`). Each carries the
hash of the row before it, so an edit or a deletion made behind the trigger's back breaks the
chain where it happened (`{{ cookiecutter.project_slug }} audit verify` finds it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.models.base import Base

# SQLite numbers rows itself only for an INTEGER primary key.
_ROW_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    # Chain order: ids are drawn under the chain's lock, so they follow the hash links.
    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # No foreign key: the trail outlives the accounts it mentions.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
