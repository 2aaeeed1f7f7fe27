"""Idempotent POSTs: a client retrying with the same `Idempotency-Key` gets the first response.

Usable by any route that creates something. The key is claimed in the request's own unit of
work and the response stored before it commits, so the claim, the change and the stored
response are committed together or not at all: a failed request leaves the key free for a
retry, and no other request ever sees a claimed key without its response.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from {{ cookiecutter.project_slug }}.core.errors import ConflictError, IdempotencyKeyReusedError
from {{ cookiecutter.project_slug }}.repositories.idempotency_key import IdempotencyKeyRepository


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: str
    headers: Mapping[str, str]


class IdempotencyService:
    def __init__(self, keys: IdempotencyKeyRepository, *, ttl_seconds: int) -> None:
        self._keys = keys
        self._ttl = timedelta(seconds=ttl_seconds)

    async def begin(self, user_id: uuid.UUID, key: str, request_hash: str) -> StoredResponse | None:
        """`None` when this request now owns `key` (run it, then `complete`); the stored
        response when the same request already ran."""
        now = datetime.now(UTC)
        if await self._keys.claim(user_id, key, request_hash, now=now, expires_at=now + self._ttl):
            return None
        record = await self._keys.get(user_id, key)
        if record is not None and record.request_hash != request_hash:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request; use a new key"
            )
        if record is None or record.status_code is None or record.response_body is None:
            # Only reachable on a database that does not make the second claim wait.
            raise ConflictError("a request with this Idempotency-Key is in progress; retry")
        return StoredResponse(
            record.status_code, record.response_body, dict(record.response_headers or {})
        )

    async def complete(
        self,
        user_id: uuid.UUID,
        key: str,
        *,
        status_code: int,
        body: str,
        headers: Mapping[str, str],
    ) -> None:
        """Store the response of the request that owns `key`."""
        await self._keys.store_response(
            user_id, key, status_code=status_code, body=body, headers=headers
        )

    async def purge_expired(self) -> int:
        """Delete expired records (beat's periodic cleanup); returns how many went."""
        return await self._keys.purge_expired(datetime.now(UTC))
