"""The modules a new resource starts from, as `string.Template` texts.

`$name` placeholders rather than a template engine: nothing to install, and the texts read like
the code they produce. Lists (fields, imports, assertions) are rendered by `generate.py` and
dropped in whole. The output is formatted with ruff afterwards, so line lengths need no care.
"""

from __future__ import annotations

from string import Template

MODEL = Template('''\
"""The `$plural` table: owned by a user."""

from __future__ import annotations

$imports

from $package.models.base import Base, Timestamps, UUIDPrimaryKey


class $Class(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "$plural"
    __table_args__ = (Index("ix_${plural}_owner_id_created_at", "owner_id", "created_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
$columns
    # Bumped on every update by SQLAlchemy; clients see it as `version`.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
''')

SCHEMAS = Template('''\
"""$Class payloads."""

from __future__ import annotations

$imports

from pydantic import BaseModel, ConfigDict, Field

from $package.schemas.base import $base_imports

# One definition per column, so a create and an update can never disagree on its limits.
$aliases


class ${Class}Create(RequestModel):
$create_fields


class ${Class}Update(RequestModel):
    # Leaving a field out keeps it; `null` is refused for the fields the table requires.
$update_fields


class ${Class}Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
$read_fields
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
''')

REPOSITORY = Template('''\
"""Queries on $plural."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from $package.models.$name import $Class
from $package.repositories.base import Repository


class ${Class}Repository(Repository[$Class]):
    async def get(self, ${name}_id: uuid.UUID) -> $Class | None:
        return await self.session.get($Class, ${name}_id)

    async def list_page(
        self, *, owner_id: uuid.UUID | None, offset: int, limit: int
    ) -> tuple[Sequence[$Class], int]:
        """One page, newest first, and the total; `owner_id=None` lists every owner's $plural."""
        query = select($Class)
        count = select(func.count()).select_from($Class)
        if owner_id is not None:
            query = query.where($Class.owner_id == owner_id)
            count = count.where($Class.owner_id == owner_id)
        # `id` breaks ties so pages never overlap when timestamps collide.
        query = query.order_by($Class.created_at.desc(), $Class.id.desc())
        rows = (await self.session.scalars(query.offset(offset).limit(limit))).all()
        total = (await self.session.execute(count)).scalar_one()
        return rows, total
''')

SERVICE = Template('''\
"""$Class use cases. $Plural are visible and editable by their owner and by admins only."""

from __future__ import annotations

import uuid

from $package.core.errors import NotFoundError
from $package.core.permissions import Permission, is_granted
from $package.models.$name import $Class
from $package.models.user import User
from $package.repositories.$name import ${Class}Repository
from $package.schemas.$name import ${Class}Create, ${Class}Read, ${Class}Update
from $package.schemas.pagination import Page, PageParams


def _sees_all(actor: User) -> bool:
    return is_granted(actor.role, [Permission.${PERMISSION}_ADMIN])


class ${Class}Service:
    def __init__(self, $plural: ${Class}Repository) -> None:
        self._$plural = $plural

    async def create(self, owner: User, data: ${Class}Create) -> $Class:
        $name = $Class(owner_id=owner.id, $create_arguments)
        return await self._$plural.add($name)

    async def get(self, actor: User, ${name}_id: uuid.UUID) -> $Class:
        $name = await self._$plural.get(${name}_id)
        # Someone else's $name answers exactly like a missing one, so ids cannot be probed.
        if $name is None or ($name.owner_id != actor.id and not _sees_all(actor)):
            raise NotFoundError(f"$name {${name}_id} does not exist")
        return $name

    async def list_page(self, actor: User, params: PageParams) -> Page[${Class}Read]:
        owner_id = None if _sees_all(actor) else actor.id
        rows, total = await self._$plural.list_page(
            owner_id=owner_id, offset=params.offset, limit=params.page_size
        )
        return Page[${Class}Read].build(
            [${Class}Read.model_validate(row) for row in rows], total=total, params=params
        )

    async def update(self, actor: User, ${name}_id: uuid.UUID, data: ${Class}Update) -> $Class:
        $name = await self.get(actor, ${name}_id)
        for field, value in data.model_dump(exclude_unset=True).items():
            setattr($name, field, value)
        await self._$plural.flush()
        # The row's version and updated_at are set on the way to the database; read them back.
        await self._$plural.refresh($name)
        return $name

    async def delete(self, actor: User, ${name}_id: uuid.UUID) -> None:
        $name = await self.get(actor, ${name}_id)
        await self._$plural.delete($name)
''')

ROUTER = Template('''\
"""$Plural owned by users: every CRUD route, visible to their owner and to admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from $package.api.deps import ${Class}ServiceDep
from $package.api.openapi import problem_responses
from $package.api.permissions import require_permissions
from $package.core.permissions import Permission
from $package.models.$name import $Class
from $package.models.user import User
from $package.schemas.$name import ${Class}Create, ${Class}Read, ${Class}Update
from $package.schemas.pagination import Page, PageParams

router = APIRouter(prefix="/$url", tags=["$url"], responses=problem_responses(401, 403, 422))

Reader = Annotated[User, Depends(require_permissions(Permission.${PERMISSION}_READ))]
Writer = Annotated[User, Depends(require_permissions(Permission.${PERMISSION}_WRITE))]


@router.post(
    "",
    response_model=${Class}Read,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(413),
)
async def create_$name(data: ${Class}Create, user: Writer, $plural: ${Class}ServiceDep) -> $Class:
    """Create a $human owned by the signed-in user."""
    return await $plural.create(user, data)


@router.get("", response_model=Page[${Class}Read])
async def list_$plural(
    user: Reader, $plural: ${Class}ServiceDep, params: Annotated[PageParams, Query()]
) -> Page[${Class}Read]:
    """The signed-in user's $human_plural, newest first (everyone's for admins)."""
    return await $plural.list_page(user, params)


@router.get("/{${name}_id}", response_model=${Class}Read, responses=problem_responses(404))
async def get_$name(${name}_id: uuid.UUID, user: Reader, $plural: ${Class}ServiceDep) -> $Class:
    """One $human."""
    return await $plural.get(user, ${name}_id)


@router.patch("/{${name}_id}", response_model=${Class}Read, responses=problem_responses(404, 413))
async def update_$name(
    ${name}_id: uuid.UUID, data: ${Class}Update, user: Writer, $plural: ${Class}ServiceDep
) -> $Class:
    """Change the fields given; the others keep their values."""
    return await $plural.update(user, ${name}_id, data)


@router.delete(
    "/{${name}_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_$name(
    ${name}_id: uuid.UUID, user: Writer, $plural: ${Class}ServiceDep
) -> Response:
    """Delete a $human."""
    await $plural.delete(user, ${name}_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
''')

MIGRATION = Template('''\
"""Create $plural.

Revision ID: $revision
Revises: $down_revision
Create Date: $date
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "$revision"
down_revision: str | Sequence[str] | None = $down_revision_literal
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "$plural",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
$columns
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_${plural}_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_$plural")),
    )
    op.create_index("ix_${plural}_owner_id_created_at", "$plural", ["owner_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_${plural}_owner_id_created_at", table_name="$plural")
    op.drop_table("$plural")
''')

API_TESTS = Template('''\
"""The $plural routes through the HTTP client: owners and admins only, paginated lists."""

from __future__ import annotations

$imports

from httpx import AsyncClient

from tests.factories import auth_headers

URL = "/api/v1/$url"
# A valid body with every field; CHANGES gives `$first` another value.
PAYLOAD = {$payload}
CHANGES = {"$first": $changed}


async def create_$name(client: AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post(URL, json=PAYLOAD, headers=headers)
    assert response.status_code == 201, response.text
    ${name}_id: str = response.json()["id"]
    return ${name}_id


class TestCreate$Class:
    async def test_creates_for_the_owner(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post(URL, json=PAYLOAD, headers=headers)
        me = await client.get("/api/v1/users/me", headers=headers)

        assert response.status_code == 201
        body = response.json()
$created_checks
        assert body["version"] == 1
        assert body["owner_id"] == me.json()["id"]

    async def test_anonymous_gets_401(self, client: AsyncClient) -> None:
        response = await client.post(URL, json=PAYLOAD)

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    async def test_unknown_field_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post(
            URL, json={**PAYLOAD, "owner_id": str(uuid.uuid4())}, headers=headers
        )

        assert response.status_code == 422
$required_test

class TestGet$Class:
    async def test_owner_reads_their_$name(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        response = await client.get(f"{URL}/{${name}_id}", headers=headers)

        assert response.status_code == 200
        assert response.json()["id"] == ${name}_id

    async def test_someone_elses_${name}_looks_missing(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        ${name}_id = await create_$name(client, owner)

        response = await client.get(f"{URL}/{${name}_id}", headers=stranger)

        assert response.status_code == 404

    async def test_unknown_id_is_a_404(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(f"{URL}/{uuid.uuid4()}", headers=headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    async def test_malformed_id_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(f"{URL}/not-a-uuid", headers=headers)

        assert response.status_code == 422


class TestList$Plural:
    async def test_pages_through_own_${plural}_only(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        other = await auth_headers(client)
        mine = {await create_$name(client, headers) for _ in range(5)}
        theirs = await create_$name(client, other)

        first = await client.get(URL, params={"page_size": 2}, headers=headers)
        last = await client.get(URL, params={"page": 3, "page_size": 2}, headers=headers)

        assert first.status_code == 200
        body = first.json()
        assert body["total"] == 5
        assert body["pages"] == 3
        assert len(body["items"]) == 2
        assert len(last.json()["items"]) == 1
        seen = [row["id"] for row in body["items"] + last.json()["items"]]
        assert theirs not in seen
        assert set(seen) <= mine

    async def test_page_size_over_100_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(URL, params={"page_size": 101}, headers=headers)

        assert response.status_code == 422


class TestUpdate$Class:
    async def test_patch_changes_only_given_fields_and_bumps_version(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        response = await client.patch(f"{URL}/{${name}_id}", json=CHANGES, headers=headers)

        assert response.status_code == 200
        body = response.json()
$updated_checks
        assert body["version"] == 2

    async def test_stranger_cannot_patch(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        ${name}_id = await create_$name(client, owner)

        response = await client.patch(f"{URL}/{${name}_id}", json=CHANGES, headers=stranger)
        unchanged = await client.get(f"{URL}/{${name}_id}", headers=owner)

        assert response.status_code == 404
        assert unchanged.json()["version"] == 1


class TestDelete$Class:
    async def test_owner_deletes_and_it_is_gone(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        deleted = await client.delete(f"{URL}/{${name}_id}", headers=headers)
        again = await client.get(f"{URL}/{${name}_id}", headers=headers)

        assert deleted.status_code == 204
        assert again.status_code == 404

    async def test_stranger_cannot_delete(self, client: AsyncClient) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        ${name}_id = await create_$name(client, owner)

        response = await client.delete(f"{URL}/{${name}_id}", headers=stranger)

        assert response.status_code == 404
        assert (await client.get(f"{URL}/{${name}_id}", headers=owner)).status_code == 200
''')

REQUIRED_TEST = Template("""
    async def test_missing_${field}_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        body = {key: value for key, value in PAYLOAD.items() if key != "$field"}

        response = await client.post(URL, json=body, headers=headers)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "$field"

    async def test_null_${field}_is_a_422_on_patch(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        response = await client.patch(
            f"{URL}/{${name}_id}", json={"$field": None}, headers=headers
        )

        assert response.status_code == 422
""")

SERVICE_TESTS = Template('''\
"""$Class use cases: owners and admins only, changes bump the version."""

from __future__ import annotations

import uuid

import pytest

from $package.core.errors import NotFoundError
from $package.db.session import UnitOfWork
from $package.models.user import User
from $package.repositories.$name import ${Class}Repository
from $package.repositories.user import UserRepository
from $package.schemas.$name import ${Class}Create, ${Class}Update
from $package.schemas.pagination import PageParams
from $package.services.$name import ${Class}Service
from tests.factories import unique_email

# Request bodies as a client sends them; the schemas turn them into typed values.
PAYLOAD = {$payload}
CHANGES = {"$first": $changed}


async def make_user(uow: UnitOfWork, role: str = "user") -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role=role)
    return await UserRepository(uow.session).add(user)


def service(uow: UnitOfWork) -> ${Class}Service:
    return ${Class}Service(${Class}Repository(uow.session))


def new_$name() -> ${Class}Create:
    return ${Class}Create.model_validate(PAYLOAD)


class TestVisibility:
    async def test_owner_and_admin_see_the_$name(self, uow: UnitOfWork) -> None:
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())

        assert (await $plural.get(owner, $name.id)).id == $name.id
        assert (await $plural.get(admin, $name.id)).id == $name.id

    async def test_someone_else_gets_not_found_like_a_missing_$name(self, uow: UnitOfWork) -> None:
        owner, stranger = await make_user(uow), await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())

        with pytest.raises(NotFoundError):
            await $plural.get(stranger, $name.id)
        with pytest.raises(NotFoundError):
            await $plural.update(stranger, $name.id, ${Class}Update.model_validate(CHANGES))
        with pytest.raises(NotFoundError):
            await $plural.delete(stranger, $name.id)
        with pytest.raises(NotFoundError):
            await $plural.get(stranger, uuid.uuid4())

    async def test_list_shows_own_${plural}_and_admins_see_all(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        $plural = service(uow)
        mine = await $plural.create(first, new_$name())
        theirs = await $plural.create(second, new_$name())
        params = PageParams(page=1, page_size=100)

        own = await $plural.list_page(first, params)
        everything = await $plural.list_page(admin, params)

        assert [row.id for row in own.items] == [mine.id]
        assert own.total == 1
        assert {mine.id, theirs.id} <= {row.id for row in everything.items}


class TestChanges:
    async def test_update_changes_the_field_and_bumps_the_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())
        version = $name.version
        changes = ${Class}Update.model_validate(CHANGES)

        updated = await $plural.update(owner, $name.id, changes)

        assert updated.$first == changes.$first
        assert updated.version == version + 1

    async def test_delete_removes_it(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())

        await $plural.delete(owner, $name.id)

        with pytest.raises(NotFoundError):
            await $plural.get(owner, $name.id)
''')

REPOSITORY_TESTS = Template('''\
"""Queries on $plural against PostgreSQL: lookups, owner filter, stable pages."""

from __future__ import annotations

import uuid

from $package.db.session import UnitOfWork
from $package.models.$name import $Class
from $package.models.user import User
from $package.repositories.$name import ${Class}Repository
from $package.repositories.user import UserRepository
from $package.schemas.$name import ${Class}Create
from tests.factories import unique_email

PAYLOAD = {$payload}


async def make_user(uow: UnitOfWork) -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role="user")
    return await UserRepository(uow.session).add(user)


async def add_$name(repository: ${Class}Repository, owner: User) -> $Class:
    values = ${Class}Create.model_validate(PAYLOAD).model_dump()
    return await repository.add($Class(owner_id=owner.id, **values))


class TestGet:
    async def test_finds_by_id(self, uow: UnitOfWork) -> None:
        repository = ${Class}Repository(uow.session)
        $name = await add_$name(repository, await make_user(uow))

        assert await repository.get($name.id) is $name

    async def test_unknown_id_is_none(self, uow: UnitOfWork) -> None:
        assert await ${Class}Repository(uow.session).get(uuid.uuid4()) is None


class TestListPage:
    async def test_pages_cover_the_owners_rows_once(self, uow: UnitOfWork) -> None:
        # Rows added in one transaction share created_at: only the id keeps the order stable.
        owner, other = await make_user(uow), await make_user(uow)
        repository = ${Class}Repository(uow.session)
        mine = {(await add_$name(repository, owner)).id for _ in range(5)}
        await add_$name(repository, other)

        pages = [
            await repository.list_page(owner_id=owner.id, offset=offset, limit=2)
            for offset in (0, 2, 4)
        ]

        seen = [row.id for rows, _ in pages for row in rows]
        assert sorted(seen) == sorted(mine)
        assert {total for _, total in pages} == {5}

    async def test_without_owner_lists_everyone(self, uow: UnitOfWork) -> None:
        repository = ${Class}Repository(uow.session)
        first = await add_$name(repository, await make_user(uow))
        second = await add_$name(repository, await make_user(uow))

        rows, total = await repository.list_page(owner_id=None, offset=0, limit=100)

        assert {first.id, second.id} <= {row.id for row in rows}
        assert total >= 2


class TestDelete:
    async def test_removes_the_row(self, uow: UnitOfWork) -> None:
        repository = ${Class}Repository(uow.session)
        $name = await add_$name(repository, await make_user(uow))

        await repository.delete($name)

        assert await repository.get($name.id) is None
''')
