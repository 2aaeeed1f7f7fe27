"""Queries on idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from {{ cookiecutter.project_slug }}.models.idempotency_key import IdempotencyKey
from {{ cookiecutter.project_slug }}.repositories.base import Repository


class IdempotencyKeyRepository(Repository[IdempotencyKey]):
    async def claim(
        self,
        user_id: uuid.UUID,
        key: str,
        request_hash: str,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> bool:
        """Record `key` as this transaction's, or take over an expired record; `False` when a
        live record exists.

        One statement, so two requests racing for a key cannot both win: PostgreSQL makes the
        second INSERT wait until the first transaction ends, then sees its committed row.
        """
        dialect = self.session.get_bind().dialect.name
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = insert(IdempotencyKey).values(
            user_id=user_id, key=key, request_hash=request_hash, expires_at=expires_at
        )
        fresh = {
            "request_hash": statement.excluded.request_hash,
            "expires_at": statement.excluded.expires_at,
            "created_at": now,
            "status_code": None,
            "response_body": None,
            "response_headers": None,
        }
        upsert = statement.on_conflict_do_update(
            index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
            set_=fresh,
            where=IdempotencyKey.expires_at <= now,
        )
        claimed = await self.session.execute(upsert.returning(IdempotencyKey.key))
        return claimed.first() is not None

    async def get(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        query = select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
        # Bypass the identity map: the row may have been written by another transaction.
        return (
            await self.session.execute(query.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def store_response(
        self,
        user_id: uuid.UUID,
        key: str,
        *,
        status_code: int,
        body: str,
        headers: Mapping[str, str],
    ) -> None:
        record = await self.get(user_id, key)
        if record is None:
            raise LookupError(f"idempotency key {key!r} was not claimed")
        record.status_code = status_code
        record.response_body = body
        record.response_headers = dict(headers)
        await self.flush()

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
