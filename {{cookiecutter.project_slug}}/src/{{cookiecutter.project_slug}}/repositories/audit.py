"""Reads and appends on the audit log. There is deliberately no update or delete here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db.lock import lock_key
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry

# One chain per database: every appender takes this transaction-level lock first.
CHAIN_LOCK_KEY = lock_key("audit_log chain")


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_chain(self) -> None:
        """Serialise appends until this transaction ends, so two writers never link to the same
        head (the chain would fork).

        PostgreSQL: an advisory lock released at commit or rollback; the head is read after it
        is granted, by a new statement, so (at the default READ COMMITTED) it sees the previous
        holder's committed row. SQLite admits one writer at a time: a transaction that read a
        head another one has since moved on from fails to write ("database is locked") rather
        than fork the chain.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY}
            )

    async def head_hash(self) -> str | None:
        query = select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        self.session.add_all(entries)
        await self.session.flush()

    async def page(self, *, before_id: int | None, limit: int) -> Sequence[AuditEntry]:
        """Newest first: `limit` entries with ids below `before_id` (from the head when None)."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        return (await self.session.scalars(query)).all()

    async def walk(self, *, batch_size: int = 1000) -> AsyncIterator[AuditEntry]:
        """Every entry in chain order, read in batches so memory stays flat."""
        after: int | None = None
        while True:
            query = select(AuditEntry).order_by(AuditEntry.id).limit(batch_size)
            if after is not None:
                query = query.where(AuditEntry.id > after)
            batch = (await self.session.scalars(query)).all()
            for entry in batch:
                yield entry
            if len(batch) < batch_size:
                return
            after = batch[-1].id
            # Entries already checked need not stay in the session's identity map.
            for entry in batch:
                self.session.expunge(entry)

    async def count(self) -> int:
        query = select(func.count()).select_from(AuditEntry)
        return (await self.session.execute(query)).scalar_one()
