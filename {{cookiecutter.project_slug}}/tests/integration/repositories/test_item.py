"""Item queries against PostgreSQL: keyset pages hold under concurrent change, and every list
query shape is served by an index."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.core.cache import Cache, NullCacheStore
from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.core.permissions import Permission, permissions_of
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.session import (
    UnitOfWork,
    create_engine,
    create_session_maker,
    unit_of_work,
)
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.item import ItemListParams
from {{ cookiecutter.project_slug }}.services.item import ItemService
from {{ cookiecutter.project_slug }}.services.outbox import OutboxPublisher
from tests.conftest import make_settings
from tests.factories import audit_log, unique_email

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SORTS = ["-created_at", "created_at", "title", "-title", "-created_at,title", "title,-updated_at"]

# Few distinct values, so that ties (broken by id) are the common case.
rows = st.tuples(st.integers(0, 3), st.sampled_from("abc"))
changes = st.one_of(
    st.tuples(st.just("insert"), rows),
    st.tuples(st.just("delete"), st.integers(0, 1_000)),
)


async def make_user(session: AsyncSession, role: str = "user") -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role=role)
    return await UserRepository(session).add(user)


def grants(user: User) -> frozenset[Permission]:
    """What `user` may do when signed in with a session: everything their role allows."""
    return permissions_of(user.role)


def service(uow: UnitOfWork) -> ItemService:
    codec = CursorCodec("k" * 32)
    # No cache: these tests are about the queries.
    cache = Cache(NullCacheStore())
    events = OutboxPublisher(uow, lambda: None)
    return ItemService(uow, ItemRepository(uow.session), events, codec, cache, audit_log(uow))


async def insert(session: AsyncSession, owner: User, day: int, title: str) -> Item:
    moment = EPOCH + timedelta(days=day)
    item = Item(owner_id=owner.id, title=title, created_at=moment, updated_at=moment)
    session.add(item)
    await session.flush()
    return item


class TestKeysetUnderChange:
    @settings(
        max_examples=120,
        deadline=None,
        # One user for every example; each example's rows live in a savepoint rolled back.
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        initial=st.lists(rows, min_size=2, max_size=25),
        sort=st.sampled_from(SORTS),
        limit=st.integers(1, 5),
        between_pages=st.lists(st.lists(changes, max_size=3), max_size=12),
    )
    async def test_never_repeats_and_never_skips_a_row_that_stayed(
        self,
        uow: UnitOfWork,
        initial: list[tuple[int, str]],
        sort: str,
        limit: int,
        between_pages: list[list[tuple[str, Any]]],
    ) -> None:
        session = uow.session
        savepoint = await session.begin_nested()
        try:
            owner = await make_user(session)
            live = [await insert(session, owner, day, title) for day, title in initial]
            stayed = {item.id for item in live}
            items = service(uow)

            seen: list[uuid.UUID] = []
            params = ItemListParams(limit=limit, sort=sort)
            for page_number in range(1_000):
                page = await items.list_cursor(owner, params, granted=grants(owner))
                seen += [item.id for item in page.items]
                if page.next_cursor is None:
                    break
                params = ItemListParams(cursor=page.next_cursor, limit=limit)
                for kind, argument in (between_pages[page_number : page_number + 1] or [[]])[0]:
                    if kind == "insert":
                        live.append(await insert(session, owner, *argument))
                    elif live:
                        gone = live.pop(argument % len(live))
                        stayed.discard(gone.id)
                        await session.delete(gone)
                        await session.flush()

            assert len(seen) == len(set(seen)), "a row came back twice"
            assert stayed <= set(seen), "a row that existed throughout was skipped"
        finally:
            await savepoint.rollback()


@contextmanager
def captured(session: AsyncSession) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and parameters) the session runs inside the block."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


class TestIndexes:
    async def test_no_list_query_shape_scans_the_table(self, uow: UnitOfWork) -> None:
        session = uow.session
        owners = [await make_user(session) for _ in range(50)]
        admin = await make_user(session, role="admin")
        await session.execute(
            text(
                "INSERT INTO items (id, owner_id, title, created_at, updated_at) "
                "SELECT gen_random_uuid(), (CAST(:owners AS uuid[]))[1 + n % 50], md5(n::text), "
                "now() - n * interval '1 minute', now() - (n % 997) * interval '1 second' "
                "FROM generate_series(1, 20000) AS n"
            ),
            {"owners": [owner.id for owner in owners]},
        )
        await session.execute(text("ANALYZE items"))
        items = service(uow)

        with captured(session) as statements:
            for actor in (owners[0], admin):
                for sort in SORTS:
                    await items.list_page(
                        actor, ItemListParams(sort=sort, page=3), granted=grants(actor)
                    )
                    first = await items.list_cursor(
                        actor, ItemListParams(sort=sort, limit=20), granted=grants(actor)
                    )
                    assert first.next_cursor is not None
                    await items.list_cursor(
                        actor, ItemListParams(cursor=first.next_cursor), granted=grants(actor)
                    )
                    await items.list_cursor(
                        actor, ItemListParams(sort=sort, q="ab", limit=5), granted=grants(actor)
                    )

        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        checked = 0
        for statement, parameters in statements:
            if "FROM items" not in statement:
                continue
            if statement.startswith("SELECT count(*)") and "items.owner_id =" not in statement:
                # An admin's total counts every row; that reads the table by nature (documented).
                continue
            rows = await raw.fetch(f"EXPLAIN {statement}", *(parameters or ()))
            plan = "\n".join(row[0] for row in rows)
            assert "Seq Scan on items" not in plan, f"{statement}\n{parameters}\n{plan}"
            checked += 1
        assert checked >= 2 * len(SORTS) * 4


class TestOnSqlite:
    async def test_rows_stamped_by_the_database_clock_page_once_each(self, tmp_path: Path) -> None:
        """`make dev` runs on SQLite, whose own `now()` writes timestamps without a fraction."""
        settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/dev.sqlite3")
        await migrate.upgrade(settings)
        engine = create_engine(settings.database_url)
        try:
            async with unit_of_work(create_session_maker(engine)) as uow:
                owner = await make_user(uow.session)
                for title in "edcba":
                    # created_at from the server default, within one second of each other
                    uow.session.add(Item(owner_id=owner.id, title=title))
                await uow.session.flush()
                items = service(uow)
                seen: list[str] = []
                params = ItemListParams(limit=2, sort="-created_at,title")
                for _ in range(10):
                    page = await items.list_cursor(owner, params, granted=grants(owner))
                    seen += [item.title for item in page.items]
                    if page.next_cursor is None:
                        break
                    params = ItemListParams(cursor=page.next_cursor, limit=2)
        finally:
            await engine.dispose()

        assert sorted(seen) == list("abcde")
