"""Item use cases: owners and admins only, follow-ups after commit, idempotent processing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.core.cache import Cache, MemoryCacheStore
from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.core.errors import (
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from {{ cookiecutter.project_slug }}.core.events import EventPublisher
from {{ cookiecutter.project_slug }}.core.permissions import Permission, permissions_of
from {{ cookiecutter.project_slug }}.db.session import SessionMaker, UnitOfWork, unit_of_work
from {{ cookiecutter.project_slug }}.models.audit import AuditEntry
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.item import ItemCreate, ItemListParams, ItemUpdate
from {{ cookiecutter.project_slug }}.services.item import ItemCreated, ItemService
from {{ cookiecutter.project_slug }}.services.outbox import OutboxPublisher
from tests.factories import audit_log, recorded_events, unique_email


async def make_user(uow: UnitOfWork, role: str = "user") -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role=role)
    return await UserRepository(uow.session).add(user)


def grants(user: User) -> frozenset[Permission]:
    """What `user` may do when signed in with a session: everything their role allows."""
    return permissions_of(user.role)


def service(
    uow: UnitOfWork, events: EventPublisher | None = None, cache: Cache | None = None
) -> ItemService:
    return ItemService(
        uow,
        ItemRepository(uow.session),
        events or OutboxPublisher(uow, lambda: None),
        CursorCodec("k" * 32),
        cache or Cache(MemoryCacheStore()),
        audit_log(uow),
    )


class TestVisibility:
    async def test_owner_and_admin_see_the_item(self, uow: UnitOfWork) -> None:
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="mine"))
        assert (await items.get(owner, item.id, granted=grants(owner))).title == "mine"
        assert (await items.get(admin, item.id, granted=grants(admin))).title == "mine"

    async def test_someone_else_gets_not_found_like_a_missing_item(self, uow: UnitOfWork) -> None:
        owner, stranger = await make_user(uow), await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="private"))
        with pytest.raises(NotFoundError):
            await items.get(stranger, item.id, granted=grants(stranger))
        with pytest.raises(NotFoundError):
            await items.update(
                stranger, item.id, ItemUpdate(title="taken"), granted=grants(stranger)
            )
        with pytest.raises(NotFoundError):
            await items.delete(stranger, item.id, granted=grants(stranger))
        with pytest.raises(NotFoundError):
            await items.get(stranger, uuid.uuid4(), granted=grants(stranger))

    async def test_list_shows_own_items_and_admins_see_all(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        items = service(uow)
        await items.create(first, ItemCreate(title="a"))
        await items.create(second, ItemCreate(title="b"))
        params = ItemListParams(page=1, page_size=100)

        own = await items.list_page(first, params, granted=grants(first))
        assert [item.title for item in own.items] == ["a"]
        assert own.total == 1
        everything = await items.list_page(admin, params, granted=grants(admin))
        assert {"a", "b"} <= {item.title for item in everything.items}

    async def test_only_admins_filter_by_another_owner(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        items = service(uow)
        await items.create(second, ItemCreate(title="theirs"))

        with pytest.raises(PermissionDeniedError):
            await items.list_page(first, ItemListParams(owner_id=second.id), granted=grants(first))
        own = await items.list_page(first, ItemListParams(owner_id=first.id), granted=grants(first))
        theirs = await items.list_page(
            admin, ItemListParams(owner_id=second.id), granted=grants(admin)
        )

        assert own.total == 0
        assert [item.title for item in theirs.items] == ["theirs"]

    async def test_an_admin_without_items_admin_reaches_only_their_own_items(
        self, uow: UnitOfWork
    ) -> None:
        # An admin's API key scoped to reading and writing items: the role is not consulted.
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        scoped = frozenset({Permission.ITEMS_READ, Permission.ITEMS_WRITE})
        items = service(uow)
        theirs = await items.create(owner, ItemCreate(title="theirs"))
        mine = await items.create(admin, ItemCreate(title="mine"))

        with pytest.raises(NotFoundError):
            await items.read(admin, theirs.id, granted=scoped)
        with pytest.raises(NotFoundError):
            await items.update(admin, theirs.id, ItemUpdate(title="taken"), granted=scoped)
        with pytest.raises(NotFoundError):
            await items.delete(admin, theirs.id, granted=scoped)
        listed = await items.list_page(admin, ItemListParams(), granted=scoped)
        by_cursor = await items.list_cursor(admin, ItemListParams(limit=100), granted=scoped)

        assert [item.id for item in listed.items] == [mine.id]
        assert [item.id for item in by_cursor.items] == [mine.id]

    async def test_listing_another_owner_is_refused_and_audited(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)

        with pytest.raises(PermissionDeniedError, match="items:admin"):
            await service(uow).list_page(
                first, ItemListParams(owner_id=second.id), granted=grants(first)
            )
        await uow.commit()

        denials = await uow.session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "permission.denied", AuditEntry.actor_id == first.id
            )
        )
        assert [entry.changes for entry in denials] == [
            {"required": ["items:admin"], "mode": "all"}
        ]


class TestChanges:
    async def test_update_bumps_the_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="old"))
        version = item.version
        updated = await items.update(owner, item.id, ItemUpdate(title="new"), granted=grants(owner))
        assert updated.title == "new"
        assert updated.version == version + 1

    async def test_if_match_allows_only_the_current_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="old"))
        await items.update(owner, item.id, ItemUpdate(title="new"), granted=grants(owner))

        with pytest.raises(PreconditionFailedError):
            await items.update(
                owner, item.id, ItemUpdate(title="lost"), if_match={1}, granted=grants(owner)
            )
        with pytest.raises(PreconditionFailedError):
            await items.delete(owner, item.id, if_match={1}, granted=grants(owner))
        updated = await items.update(
            owner, item.id, ItemUpdate(title="won"), if_match={2}, granted=grants(owner)
        )

        assert (updated.title, updated.version) == ("won", 3)

    async def test_records_the_event_with_the_item_and_kicks_the_relay_after_commit(
        self, uow: UnitOfWork
    ) -> None:
        owner = await make_user(uow)
        kicks: list[str] = []
        publisher = OutboxPublisher(uow, lambda: kicks.append("kick"))
        item = await service(uow, publisher).create(owner, ItemCreate(title="x"))

        recorded = await recorded_events(uow.session, ItemCreated)
        assert [event.actor_id for event in recorded if event.item_id == item.id] == [owner.id]
        assert kicks == []
        await uow.commit()
        assert kicks == ["kick"]

    async def test_processing_is_recorded_once(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="x"))
        assert await items.mark_processed(item.id) is True
        assert item.processed_at is not None
        assert await items.mark_processed(item.id) is False
        assert await items.mark_processed(uuid.uuid4()) is False


class TestCachedReads:
    async def test_reads_come_from_the_cache_until_a_change_commits(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="cached"))
        await uow.commit()
        assert (await items.read(owner, item.id, granted=grants(owner))).title == "cached"

        # A change behind the service's back is not seen: the read is served from the cache.
        item.title = "changed directly"
        await uow.session.flush()
        assert (await items.read(owner, item.id, granted=grants(owner))).title == "cached"

        await items.update(
            owner, item.id, ItemUpdate(title="through the service"), granted=grants(owner)
        )
        # Not committed yet: the cache still holds the committed state.
        assert (await items.read(owner, item.id, granted=grants(owner))).title == "cached"
        await uow.commit()
        assert (
            await items.read(owner, item.id, granted=grants(owner))
        ).title == "through the service"

    async def test_a_rolled_back_change_keeps_the_cached_item(
        self, session_maker: SessionMaker
    ) -> None:
        cache = Cache(MemoryCacheStore())
        async with unit_of_work(session_maker) as uow:
            owner = await make_user(uow)
            item = await service(uow, cache=cache).create(owner, ItemCreate(title="kept"))
        async with unit_of_work(session_maker) as uow:
            await service(uow, cache=cache).read(owner, item.id, granted=grants(owner))

        async def failing_request() -> None:
            async with unit_of_work(session_maker) as uow:
                await service(uow, cache=cache).update(
                    owner, item.id, ItemUpdate(title="no"), granted=grants(owner)
                )
                raise RuntimeError("the request fails after the change")

        with pytest.raises(RuntimeError):
            await failing_request()

        async with unit_of_work(session_maker) as uow:
            assert (
                await service(uow, cache=cache).read(owner, item.id, granted=grants(owner))
            ).title == "kept"

    async def test_the_cached_row_is_still_checked_against_the_reader(
        self, uow: UnitOfWork
    ) -> None:
        owner, stranger = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="private"))
        await items.read(owner, item.id, granted=grants(owner))

        with pytest.raises(NotFoundError):
            await items.read(stranger, item.id, granted=grants(stranger))
        assert (await items.read(admin, item.id, granted=grants(admin))).title == "private"

    async def test_deleting_and_processing_invalidate(self, session_maker: SessionMaker) -> None:
        cache = Cache(MemoryCacheStore())
        async with unit_of_work(session_maker) as uow:
            owner = await make_user(uow)
            items = service(uow, cache=cache)
            processed = await items.create(owner, ItemCreate(title="p"))
            deleted = await items.create(owner, ItemCreate(title="d"))
        async with unit_of_work(session_maker) as uow:
            items = service(uow, cache=cache)
            assert (
                await items.read(owner, processed.id, granted=grants(owner))
            ).processed_at is None
            await items.read(owner, deleted.id, granted=grants(owner))

        async with unit_of_work(session_maker) as uow:
            items = service(uow, cache=cache)
            await items.mark_processed(processed.id)
            await items.delete(owner, deleted.id, granted=grants(owner))

        async with unit_of_work(session_maker) as uow:
            items = service(uow, cache=cache)
            assert (
                await items.read(owner, processed.id, granted=grants(owner))
            ).processed_at is not None
            with pytest.raises(NotFoundError):
                await items.read(owner, deleted.id, granted=grants(owner))
