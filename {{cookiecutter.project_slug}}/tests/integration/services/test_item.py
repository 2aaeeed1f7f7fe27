"""Item use cases: owners and admins only, follow-ups after commit, idempotent processing."""

from __future__ import annotations

import uuid

import pytest

from {{ cookiecutter.project_slug }}.core.errors import NotFoundError
from {{ cookiecutter.project_slug }}.core.events import DiscardingPublisher, EventPublisher
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.schemas.item import ItemCreate, ItemUpdate
from {{ cookiecutter.project_slug }}.schemas.pagination import PageParams
from {{ cookiecutter.project_slug }}.services.item import ItemCreated, ItemService
from tests.factories import RecordingPublisher, audit_log, unique_email


async def make_user(uow: UnitOfWork, role: str = "user") -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role=role)
    return await UserRepository(uow.session).add(user)


def service(uow: UnitOfWork, events: EventPublisher | None = None) -> ItemService:
    return ItemService(
        uow, ItemRepository(uow.session), events or DiscardingPublisher(), audit_log(uow)
    )


class TestVisibility:
    async def test_owner_and_admin_see_the_item(self, uow: UnitOfWork) -> None:
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="mine"))
        assert (await items.get(owner, item.id)).title == "mine"
        assert (await items.get(admin, item.id)).title == "mine"

    async def test_someone_else_gets_not_found_like_a_missing_item(self, uow: UnitOfWork) -> None:
        owner, stranger = await make_user(uow), await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="private"))
        with pytest.raises(NotFoundError):
            await items.get(stranger, item.id)
        with pytest.raises(NotFoundError):
            await items.update(stranger, item.id, ItemUpdate(title="taken"))
        with pytest.raises(NotFoundError):
            await items.delete(stranger, item.id)
        with pytest.raises(NotFoundError):
            await items.get(stranger, uuid.uuid4())

    async def test_list_shows_own_items_and_admins_see_all(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        items = service(uow)
        await items.create(first, ItemCreate(title="a"))
        await items.create(second, ItemCreate(title="b"))
        params = PageParams(page=1, page_size=100)

        own = await items.list_page(first, params)
        assert [item.title for item in own.items] == ["a"]
        assert own.total == 1
        everything = await items.list_page(admin, params)
        assert {"a", "b"} <= {item.title for item in everything.items}


class TestChanges:
    async def test_update_bumps_the_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="old"))
        version = item.version
        updated = await items.update(owner, item.id, ItemUpdate(title="new"))
        assert updated.title == "new"
        assert updated.version == version + 1

    async def test_notifies_only_after_commit(
        self, uow: UnitOfWork, events: RecordingPublisher
    ) -> None:
        owner = await make_user(uow)
        item = await service(uow, events).create(owner, ItemCreate(title="x"))
        assert events.published == []
        await uow.commit()
        assert events.published == [ItemCreated(item_id=item.id)]

    async def test_processing_is_recorded_once(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        items = service(uow)
        item = await items.create(owner, ItemCreate(title="x"))
        assert await items.mark_processed(item.id) is True
        assert item.processed_at is not None
        assert await items.mark_processed(item.id) is False
        assert await items.mark_processed(uuid.uuid4()) is False
