"""The audit trail: who changed what, written in the same transaction as the change.

Services call `record(...)` beside the change. Entries wait in the unit of work and are chained
and inserted just before it commits, so a rolled-back change leaves no entry, a committed one
always has its entry, and the chain's lock is held only for the commit. Events with no business
transaction to join (a refused login, a permission denial: the request's transaction rolls back)
use `record_alone`, which commits a short transaction of its own.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry
from {{ cookiecutter.project_slug }}.repositories.audit import AuditRepository

log = get_logger(__name__)

# The first entry links to this: a chain that lost its first entries does not verify.
GENESIS_HASH = "0" * 64
MASKED = "[redacted]"
# Values under these keys (anywhere in `changes`, case-insensitively) are never stored.
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "hash", "authorization")


def mask_secrets(value: object) -> object:
    """`value` with every mapping entry whose key names a secret replaced by a marker."""
    if isinstance(value, Mapping):
        return {
            key: MASKED
            if any(word in str(key).lower() for word in _SECRET_WORDS)
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def _as_json(changes: Mapping[str, object]) -> dict[str, Any]:
    # Stored exactly as hashed: ids, timestamps and the like become JSON strings first.
    normalised: dict[str, Any] = orjson.loads(orjson.dumps(mask_secrets(changes), default=str))
    return normalised


def _utc(moment: datetime) -> datetime:
    # SQLite hands timestamps back without an offset; they were written in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 over the previous hash and every field a reader relies on, canonically encoded."""
    content = {
        "prev_hash": entry.prev_hash,
        "occurred_at": _utc(entry.occurred_at).isoformat(),
        "actor_id": str(entry.actor_id) if entry.actor_id is not None else None,
        "action": entry.action,
        "resource": entry.resource,
        "resource_id": entry.resource_id,
        "changes": entry.changes,
        "request_id": entry.request_id,
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def current_request_id() -> str | None:
    """The id of the request (or of the request that enqueued the task) being served."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return str(request_id) if request_id is not None else None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    entry_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """How many entries were checked, and the first one that does not verify."""

    checked: int
    broken: ChainBreak | None


class AuditLog:
    def __init__(
        self,
        uow: UnitOfWork,
        entries: AuditRepository,
        *,
        separate: Callable[[], AbstractAsyncContextManager[AuditLog]],
    ) -> None:
        self._uow = uow
        self._entries = entries
        self._separate = separate
        self._pending: list[AuditEntry] = []

    def record(
        self,
        action: str,
        *,
        actor: uuid.UUID | None,
        resource: str,
        resource_id: object = None,
        changes: Mapping[str, object] | None = None,
    ) -> None:
        """Add an entry to this unit of work; it is written if, and only if, the work commits."""
        if not self._pending:
            self._uow.before_commit(self._write)
        self._pending.append(
            AuditEntry(
                occurred_at=datetime.now(UTC),
                actor_id=actor,
                action=action,
                resource=resource,
                resource_id=str(resource_id) if resource_id is not None else None,
                changes=_as_json(changes or {}),
                request_id=current_request_id(),
            )
        )

    async def record_alone(
        self,
        action: str,
        *,
        actor: uuid.UUID | None,
        resource: str,
        resource_id: object = None,
        changes: Mapping[str, object] | None = None,
    ) -> None:
        """Write an entry in a transaction of its own, committed now, whatever happens to the
        caller's."""
        async with self._separate() as audit:
            audit.record(
                action, actor=actor, resource=resource, resource_id=resource_id, changes=changes
            )

    async def record_denial(
        self, actor: uuid.UUID, role: str, required: Sequence[str], *, mode: str = "all"
    ) -> None:
        """Log a refused permission and audit it in a transaction of its own: the refusal rolls
        the request's back."""
        log.warning(
            "permission denied", user_id=str(actor), role=role, required=list(required), mode=mode
        )
        await self.record_alone(
            "permission.denied",
            actor=actor,
            resource="permission",
            changes={"required": list(required), "mode": mode},
        )

    async def _write(self) -> None:
        pending, self._pending = self._pending, []
        await self._entries.lock_chain()
        previous = await self._entries.head_hash() or GENESIS_HASH
        for entry in pending:
            entry.prev_hash = previous
            entry.hash = previous = entry_hash(entry)
        await self._entries.append(pending)

    async def page(self, *, before_id: int | None, limit: int) -> Sequence[AuditEntry]:
        """Newest first, `limit` entries older than `before_id`."""
        return await self._entries.page(before_id=before_id, limit=limit)

    async def verify(self) -> ChainReport:
        """Walk the chain from the first entry; stop at the first that does not verify."""
        previous = GENESIS_HASH
        checked = 0
        async for entry in self._entries.walk():
            if entry.prev_hash != previous:
                reason = "it does not link to the entry before it (entries removed or reordered)"
                return ChainReport(checked, ChainBreak(entry.id, reason))
            if entry_hash(entry) != entry.hash:
                reason = "its contents do not match its hash (it was changed)"
                return ChainReport(checked, ChainBreak(entry.id, reason))
            previous = entry.hash
            checked += 1
        return ChainReport(checked, None)
