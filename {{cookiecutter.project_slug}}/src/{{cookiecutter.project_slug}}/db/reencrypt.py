"""Re-encrypt every `EncryptedString` value under the newest key, after a key rotation.

Rows are read in batches in primary-key order (keyset, so each batch is one index range) and
each batch commits on its own: an interrupted run keeps its finished batches, and running again
(or from `--after` the last id it printed) carries on. Values already under the newest key are
left alone, so a second run writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, Text, bindparam, column, select, table, update

from {{ cookiecutter.project_slug }}.core.encryption import Encryptor
from {{ cookiecutter.project_slug }}.db.session import SessionMaker
from {{ cookiecutter.project_slug }}.models import Base
from {{ cookiecutter.project_slug }}.models.types import EncryptedString


@dataclass(frozen=True, slots=True)
class Batch:
    table: str
    read: int
    rewritten: int
    last_id: Any


def encrypted_columns() -> Iterator[tuple[Table, Column[Any]]]:
    for mapped in Base.metadata.sorted_tables:
        for candidate in mapped.columns:
            if isinstance(candidate.type, EncryptedString):
                yield mapped, candidate


async def reencrypt(
    session_maker: SessionMaker,
    encryptor: Encryptor,
    *,
    batch_size: int = 500,
    after: Any = None,
    on_batch: Callable[[Batch], None] = lambda _: None,
) -> int:
    """Rewrite each encrypted value not under the newest key; the number rewritten.

    `after` (a primary key, or its text) skips the first table's rows up to it, to resume a
    run from the last id it reported. A value no configured key decrypts stops the run with
    `DecryptionError`, its batch rolled back.
    """
    total = 0
    for mapped, encrypted in encrypted_columns():
        (key,) = mapped.primary_key.columns
        # Plain text columns: the ciphertext itself, past the type's automatic decryption.
        raw = table(mapped.name, column(key.name, key.type), column(encrypted.name, Text()))
        raw_id, raw_value = raw.c[key.name], raw.c[encrypted.name]
        rewrite = (
            update(raw)
            .where(raw_id == bindparam("row_id"))
            .values({encrypted.name: bindparam("value")})
        )
        last = key.type.python_type(after) if isinstance(after, str) else after
        while True:
            query = select(raw_id, raw_value).where(raw_value.is_not(None))
            if last is not None:
                query = query.where(raw_id > last)
            async with session_maker() as session, session.begin():
                rows = (await session.execute(query.order_by(raw_id).limit(batch_size))).all()
                if not rows:
                    break
                stale = [
                    {"row_id": row_id, "value": encryptor.rotate(value)}
                    for row_id, value in rows
                    if not encryptor.is_current(value)
                ]
                if stale:
                    await session.execute(rewrite, stale)
            last = rows[-1][0]
            total += len(stale)
            on_batch(Batch(mapped.name, len(rows), len(stale), last))
        after = None  # `--after` applies to the first table only
    return total
