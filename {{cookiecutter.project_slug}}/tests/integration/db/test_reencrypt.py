"""Key rotation against PostgreSQL: values written under an old key are rewritten under the new
one, in batches, resumably, and readable afterwards with the new key alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.encryption import (
    DecryptionError,
    Encryptor,
    generate_key,
)
from {{ cookiecutter.project_slug }}.db.reencrypt import Batch, reencrypt
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models.types import bind_encryptor
from {{ cookiecutter.project_slug }}.models.user import User
from tests.factories import unique_email

OLD, NEW = generate_key().encode(), generate_key().encode()
PHONES = [f"+1 555 0100 {number:03d}" for number in range(5)]


@pytest.fixture
def keys(engine: AsyncEngine, settings: Settings) -> Iterator[None]:
    """The engine writes under OLD until a test rebinds it; the usual key afterwards."""
    bind_encryptor(engine, Encryptor([OLD]))
    yield
    bind_encryptor(engine, Encryptor(settings.field_encryption_keys))


async def add_users(session_maker: SessionMaker) -> None:
    async with session_maker() as session:
        session.add_all(
            User(email=unique_email(), password_hash="x", phone=phone) for phone in PHONES
        )
        session.add(User(email=unique_email(), password_hash="x", phone=None))
        await session.commit()


async def raw_phones(session_maker: SessionMaker) -> dict[str, str]:
    async with session_maker() as session:
        rows = await session.execute(
            text("SELECT id::text, phone FROM users WHERE phone IS NOT NULL ORDER BY id")
        )
        return {row[0]: row[1] for row in rows}


@pytest.mark.usefixtures("keys")
async def test_rotation_rewrites_every_value_under_the_newest_key(
    engine: AsyncEngine, session_maker: SessionMaker
) -> None:
    await add_users(session_maker)
    before = await raw_phones(session_maker)
    rotated = Encryptor([NEW, OLD])
    batches: list[Batch] = []

    total = await reencrypt(session_maker, rotated, batch_size=2, on_batch=batches.append)
    after = await raw_phones(session_maker)

    assert total == len(PHONES)
    assert [batch.rewritten for batch in batches] == [2, 2, 1]
    assert after.keys() == before.keys()
    assert all(after[row_id] != before[row_id] for row_id in before)
    assert all(rotated.is_current(value) for value in after.values())
    # The old key can go: the ORM reads every value with the new key alone.
    bind_encryptor(engine, Encryptor([NEW]))
    async with session_maker() as session:
        phones = await session.scalars(select(User.phone).where(User.phone.is_not(None)))
        assert sorted(phone or "" for phone in phones) == PHONES
    # A second run finds nothing to do.
    assert await reencrypt(session_maker, rotated, batch_size=2) == 0


@pytest.mark.usefixtures("keys")
async def test_a_run_resumes_after_the_last_id_it_reported(
    session_maker: SessionMaker,
) -> None:
    await add_users(session_maker)
    rotated = Encryptor([NEW, OLD])
    ids = sorted(await raw_phones(session_maker))

    resumed = await reencrypt(session_maker, rotated, batch_size=2, after=ids[1])
    after = await raw_phones(session_maker)

    assert resumed == len(PHONES) - 2
    assert [rotated.is_current(after[row_id]) for row_id in ids] == [False, False, True, True, True]


@pytest.mark.usefixtures("keys")
async def test_a_value_under_an_unknown_key_stops_the_run_keeping_finished_batches(
    session_maker: SessionMaker,
) -> None:
    await add_users(session_maker)
    ids = sorted(await raw_phones(session_maker))
    stranger = Encryptor([generate_key().encode()]).encrypt("+1 555 0199 999")
    async with session_maker() as session:
        await session.execute(
            text("UPDATE users SET phone = :phone WHERE id = CAST(:id AS uuid)"),
            {"phone": stranger, "id": ids[3]},
        )
        await session.commit()
    rotated = Encryptor([NEW, OLD])

    with pytest.raises(DecryptionError):
        await reencrypt(session_maker, rotated, batch_size=2)

    after = await raw_phones(session_maker)
    assert [rotated.is_current(after[row_id]) for row_id in ids[:2]] == [True, True]
    assert not rotated.is_current(after[ids[2]])
