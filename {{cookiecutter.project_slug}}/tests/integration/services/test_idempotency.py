"""Idempotency records: claimed once per user and key, replayed, refused for another request,
expired and purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from {{ cookiecutter.project_slug }}.core.errors import IdempotencyKeyReusedError
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.idempotency_key import IdempotencyKey
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.idempotency_key import IdempotencyKeyRepository
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.services.idempotency import IdempotencyService, StoredResponse
from tests.factories import unique_email


async def make_user(uow: UnitOfWork) -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash")
    return await UserRepository(uow.session).add(user)


def service(uow: UnitOfWork) -> IdempotencyService:
    return IdempotencyService(IdempotencyKeyRepository(uow.session), ttl_seconds=3600)


async def test_first_claim_runs_then_the_response_is_replayed(uow: UnitOfWork) -> None:
    user = await make_user(uow)
    keys = service(uow)

    assert await keys.begin(user.id, "k", "hash-1") is None
    await keys.complete(user.id, "k", status_code=201, body='{"id": 1}', headers={"ETag": '"1"'})

    assert await keys.begin(user.id, "k", "hash-1") == StoredResponse(
        201, '{"id": 1}', {"ETag": '"1"'}
    )
    with pytest.raises(IdempotencyKeyReusedError):
        await keys.begin(user.id, "k", "hash-2")


async def test_purge_removes_only_expired_records(uow: UnitOfWork) -> None:
    user = await make_user(uow)
    keys = service(uow)
    for key in ("old", "new"):
        await keys.begin(user.id, key, "hash")
        await keys.complete(user.id, key, status_code=201, body="{}", headers={})
    await uow.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key == "old")
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )

    assert await keys.purge_expired() == 1
    assert await IdempotencyKeyRepository(uow.session).get(user.id, "old") is None
    assert await keys.begin(user.id, "new", "hash") is not None
