"""Readiness checks of the database: it answers, and its schema is at the code's head."""

from __future__ import annotations

import asyncio
from functools import cache

from sqlalchemy import text

from {{ cookiecutter.project_slug }}.db.migrate import code_heads, database_revisions
from {{ cookiecutter.project_slug }}.db.session import SessionMaker


class CheckFailedError(Exception):
    """A check failure whose message is safe to show (no addresses, SQL or stack)."""


async def ping_database(session_maker: SessionMaker) -> None:
    async with session_maker() as session:
        await session.execute(text("SELECT 1"))


# The migration scripts do not change while the process runs: read them once.
_code_heads = cache(code_heads)


async def check_migrations(session_maker: SessionMaker) -> None:
    """A replica whose code is ahead of the schema must not take traffic until `db upgrade`."""
    heads = await asyncio.to_thread(_code_heads)
    async with session_maker() as session:
        connection = await session.connection()
        current = await database_revisions(connection)
    if current != heads:
        raise CheckFailedError(
            f"database at {', '.join(sorted(current)) or 'no revision'}, "
            f"code expects {', '.join(sorted(heads))}"
        )
