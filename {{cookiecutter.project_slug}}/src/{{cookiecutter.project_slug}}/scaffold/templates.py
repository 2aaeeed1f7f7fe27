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
    # One index per sortable field, for an owner's $human_plural and for everyone's (admins),
    # each ending in `id` like the keyset order does.
    __table_args__ = (
$indexes
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
$columns
    # Bumped on every update; becomes the ETag for optimistic concurrency.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
''')

SCHEMAS = Template('''\
"""$Class payloads, and the query parameters of its list."""

from __future__ import annotations

$imports

from pydantic import BaseModel, ConfigDict, Field

from $package.schemas.base import $base_imports
from $package.schemas.pagination import ListParams

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


${CONST}_SORT_FIELDS = ($sort_fields)


class ${Class}ListParams(ListParams):
    """Pagination, sort and filters of `GET /$url`, as one query-parameter model."""

    sort_fields: ClassVar[tuple[str, ...]] = ${CONST}_SORT_FIELDS
    default_sort: ClassVar[str] = "-created_at"

${search_param}    created_after: UtcDatetime | None = Field(
        default=None, description="Only $human_plural created after this instant (exclusive)."
    )
    created_before: UtcDatetime | None = Field(
        default=None, description="Only $human_plural created before this instant (exclusive)."
    )
    owner_id: uuid.UUID | None = Field(
        default=None,
        description="Only this owner's $human_plural. "
        "Admins only; others may pass only their own id.",
    )
''')

SEARCH_PARAM = Template("""\
    q: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Only $human_plural whose $field contains this text (any case)."
    )""")

REPOSITORY = Template('''\
"""Queries on $plural."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from $package.models.$name import $Class
from $package.repositories.base import $base_imports
from $package.schemas.$name import ${CONST}_SORT_FIELDS
from $package.schemas.pagination import Sort

# Every field a client may sort by; each has an index (see the model) so no sort scans.
SORTABLE = {
$sortable
}
# A drift between the layers fails at import.
assert set(SORTABLE) == set(${CONST}_SORT_FIELDS)  # noqa: S101


@dataclass(frozen=True, slots=True, kw_only=True)
class ${Class}Filter:
    """`owner_id=None` lists every owner's $human_plural."""

    owner_id: uuid.UUID | None = None
$search_filter
    created_after: datetime | None = None
    created_before: datetime | None = None


class ${Class}Repository(Repository[$Class]):
    async def get(self, ${name}_id: uuid.UUID) -> $Class | None:
        return await self.session.get($Class, ${name}_id)

    @staticmethod
    def ordering(sort: Sort) -> Ordering:
        return Ordering.of(sort, SORTABLE, $Class.id)

    @staticmethod
    def _query(where: ${Class}Filter) -> Select[$Class]:
        query = select($Class)
        if where.owner_id is not None:
            query = query.where($Class.owner_id == where.owner_id)
$search_clause
        if where.created_after is not None:
            query = query.where($Class.created_at > where.created_after)
        if where.created_before is not None:
            query = query.where($Class.created_at < where.created_before)
        return query

    async def list_page(
        self, where: ${Class}Filter, sort: Sort, *, offset: int, limit: int
    ) -> tuple[Sequence[$Class], int]:
        """One page in `sort` order, and the number of $human_plural matching `where`."""
        return await self.offset_page(
            self._query(where), self.ordering(sort), offset=offset, limit=limit
        )

    async def list_after(
        self, where: ${Class}Filter, sort: Sort, *, after: Sequence[Any] | None, limit: int
    ) -> tuple[Sequence[$Class], list[Any] | None]:
        """Up to `limit` $human_plural after the keyset position `after`, and the next position."""
        return await self.keyset_page(
            self._query(where), self.ordering(sort), after=after, limit=limit
        )
''')

SERVICE = Template('''\
"""$Class use cases. $Plural are visible and editable by their owner and by admins only.

"Admin" means the request's effective permissions hold `$plural:admin` (`granted`): an admin
signed in with an API key scoped without it reaches only their own $human_plural.

Reads of one $human go through the cache (the row, whoever asks; access is checked after), and
every change invalidates it once committed, so a successful PATCH is never followed by a read of
the old $human.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from functools import partial
from typing import ClassVar, NoReturn

from $package.core.cache import Cache, cached
from $package.core.cursor import CursorCodec
from $package.core.errors import NotFoundError, PermissionDeniedError
from $package.core.events import Event, EventPublisher
from $package.core.permissions import Permission, holds
from $package.db.session import UnitOfWork
from $package.models.$name import $Class
from $package.models.user import User
from $package.repositories.$name import ${Class}Filter, ${Class}Repository
from $package.schemas.$name import (
    ${Class}Create,
    ${Class}ListParams,
    ${Class}Read,
    ${Class}Update,
)
from $package.schemas.pagination import CursorPage, Page
from $package.services.audit import AuditLog
from $package.services.listing import next_cursor, resume
from $package.services.versioning import check_version, write_versioned

# Binds cursors to this resource: one issued by another list endpoint is refused here.
CURSOR_SCOPE = "$plural"


class ${Class}Created(Event):
    """A new $human exists; register handlers for it in `handlers/`."""

    name: ClassVar[str] = "$name.created"
    aggregate: ClassVar[str] = "${name}_id"

    ${name}_id: uuid.UUID


def _sees_all(granted: frozenset[Permission]) -> bool:
    return holds(granted, [Permission.${PERMISSION}_ADMIN])


def ${name}_tag(${name}_id: uuid.UUID) -> str:
    """The cache tag of everything derived from one $human."""
    return f"$name:{${name}_id}"


def _missing(${name}_id: uuid.UUID) -> NotFoundError:
    return NotFoundError(f"$name {${name}_id} does not exist")


class ${Class}Service:
    def __init__(
        self,
        uow: UnitOfWork,
        $plural: ${Class}Repository,
        events: EventPublisher,
        cursors: CursorCodec,
        cache: Cache,
        audit: AuditLog,
    ) -> None:
        self._uow = uow
        self._$plural = $plural
        self._events = events
        self._cursors = cursors
        self.cache = cache
        self._audit = audit

    async def create(self, owner: User, data: ${Class}Create) -> $Class:
        $name = $Class(owner_id=owner.id, **data.model_dump())
        await self._$plural.add($name)
        await self._events.publish(${Class}Created(${name}_id=$name.id, actor_id=owner.id))
        self._audit.record(
            "$name.create",
            actor=owner.id,
            resource="$name",
            resource_id=$name.id,
            changes=data.model_dump(mode="json"),
        )
        return $name

    async def get(
        self, actor: User, ${name}_id: uuid.UUID, *, granted: frozenset[Permission]
    ) -> $Class:
        """The row itself, for changing it; reads go through `read`."""
        $name = await self._$plural.get(${name}_id)
        # Someone else's $human answers exactly like a missing one, so ids cannot be probed.
        if $name is None or ($name.owner_id != actor.id and not _sees_all(granted)):
            raise _missing(${name}_id)
        return $name

    async def read(
        self, actor: User, ${name}_id: uuid.UUID, *, granted: frozenset[Permission]
    ) -> ${Class}Read:
        $name = await self._read_model(${name}_id)
        if $name.owner_id != actor.id and not _sees_all(granted):
            raise _missing(${name}_id)
        return $name

    @cached(
        ${Class}Read,
        key=lambda ${name}_id: f"$name:v1:{${name}_id}",
        tags=lambda ${name}_id: [${name}_tag(${name}_id)],
    )
    async def _read_model(self, ${name}_id: uuid.UUID) -> ${Class}Read:
        $name = await self._$plural.get(${name}_id)
        if $name is None:
            raise _missing(${name}_id)
        return ${Class}Read.model_validate($name)

    def _invalidate_after_commit(self, ${name}_id: uuid.UUID) -> None:
        # After, not before: a read between an early invalidation and the commit would cache
        # the old row again.
        self._uow.after_commit(partial(self.cache.invalidate_tags, ${name}_tag(${name}_id)))

    async def _filter(
        self, actor: User, params: ${Class}ListParams, granted: frozenset[Permission]
    ) -> ${Class}Filter:
        owner_id = params.owner_id
        if not _sees_all(granted):
            # Refused rather than ignored: a client asking for someone else's $human_plural must
            # not mistake its own for theirs.
            if owner_id is not None and owner_id != actor.id:
                await self._deny(actor, Permission.${PERMISSION}_ADMIN)
            owner_id = actor.id
        return ${Class}Filter(
            owner_id=owner_id,$search_argument
            created_after=params.created_after,
            created_before=params.created_before,
        )

    async def _deny(self, actor: User, permission: Permission) -> NoReturn:
        await self._audit.record_denial(actor.id, actor.role, [permission.value])
        raise PermissionDeniedError(
            f"listing other owners' $human_plural needs the {permission} permission"
        )

    async def list_page(
        self, actor: User, params: ${Class}ListParams, *, granted: frozenset[Permission]
    ) -> Page[${Class}Read]:
        """Offset pagination: one numbered page and the total."""
        page = params.page_params
        rows, total = await self._$plural.list_page(
            await self._filter(actor, params, granted),
            params.effective_sort,
            offset=page.offset,
            limit=page.page_size,
        )
        return Page[${Class}Read].build(
            [${Class}Read.model_validate(row) for row in rows], total=total, params=page
        )

    async def list_cursor(
        self, actor: User, params: ${Class}ListParams, *, granted: frozenset[Permission]
    ) -> CursorPage[${Class}Read]:
        """Cursor pagination: stable under inserts and deletes, no count."""
        where = await self._filter(actor, params, granted)
        sort, position = resume(self._cursors, CURSOR_SCOPE, params)
        after = None if position is None else self._$plural.ordering(sort).parse(position)
        rows, last = await self._$plural.list_after(
            where, sort, after=after, limit=params.page_limit
        )
        return CursorPage[${Class}Read](
            items=[${Class}Read.model_validate(row) for row in rows],
            next_cursor=next_cursor(self._cursors, CURSOR_SCOPE, sort, last),
        )

    async def update(
        self,
        actor: User,
        ${name}_id: uuid.UUID,
        data: ${Class}Update,
        *,
        granted: frozenset[Permission],
        if_match: Collection[int] | None = None,
    ) -> $Class:
        """Change fields; with `if_match`, only at one of those versions."""
        $name = await self.get(actor, ${name}_id, granted=granted)
        what = f"$name {$name.id}"
        check_version(what, $name.version, if_match)
        for field, value in data.model_dump(exclude_unset=True).items():
            setattr($name, field, value)
        # The UPDATE carries `WHERE version = <version read>`: a concurrent change in between
        # makes it match nothing, so the check above cannot be raced.
        await write_versioned(self._$plural.flush(), what, $name.version, if_match)
        # The row's version and updated_at are set by the database; read them back.
        await self._$plural.refresh($name)
        self._invalidate_after_commit($name.id)
        self._audit.record(
            "$name.update",
            actor=actor.id,
            resource="$name",
            resource_id=$name.id,
            changes=data.model_dump(mode="json", exclude_unset=True),
        )
        return $name

    async def delete(
        self,
        actor: User,
        ${name}_id: uuid.UUID,
        *,
        granted: frozenset[Permission],
        if_match: Collection[int] | None = None,
    ) -> None:
        $name = await self.get(actor, ${name}_id, granted=granted)
        what = f"$name {$name.id}"
        check_version(what, $name.version, if_match)
        await write_versioned(self._$plural.delete($name), what, $name.version, if_match)
        self._invalidate_after_commit(${name}_id)
        self._audit.record(
            "$name.delete", actor=actor.id, resource="$name", resource_id=${name}_id
        )
''')

ROUTER = Template('''\
"""$Plural owned by users: every CRUD route, visible to their owner and to admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from $package.api.conditional import (
    NOT_MODIFIED_RESPONSE,
    IfMatch,
    IfNoneMatch,
    etag,
    not_modified,
    required_versions,
)
from $package.api.deps import IdempotencyServiceDep, PermissionsDep, ${Class}ServiceDep
from $package.api.idempotency import IdempotencyKeyHeader, idempotent
from $package.api.openapi import problem_responses
from $package.api.permissions import require_permissions
from $package.core.permissions import Permission
from $package.models.$name import $Class
from $package.models.user import User
from $package.schemas.$name import (
    ${Class}Create,
    ${Class}ListParams,
    ${Class}Read,
    ${Class}Update,
)
from $package.schemas.pagination import CursorPage, Page

router = APIRouter(prefix="/$url", tags=["$url"], responses=problem_responses(401, 403, 422))

Reader = Annotated[User, Depends(require_permissions(Permission.${PERMISSION}_READ))]
Writer = Annotated[User, Depends(require_permissions(Permission.${PERMISSION}_WRITE))]


@router.post(
    "",
    response_model=${Class}Read,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 413),
)
async def create_$name(
    data: ${Class}Create,
    user: Writer,
    $plural: ${Class}ServiceDep,
    idempotency: IdempotencyServiceDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Create a $human owned by the signed-in user; retry safely with `Idempotency-Key`."""

    async def create() -> tuple[${Class}Read, dict[str, str]]:
        $name = await $plural.create(user, data)
        return ${Class}Read.model_validate($name), {"ETag": etag($name.version)}

    return await idempotent(
        service=idempotency,
        user=user,
        key=idempotency_key,
        request=request,
        payload=data,
        status_code=status.HTTP_201_CREATED,
        work=create,
    )


@router.get(
    "",
    response_model=Page[${Class}Read] | CursorPage[${Class}Read],
    responses=problem_responses(400),
)
async def list_$plural(
    user: Reader,
    granted: PermissionsDep,
    $plural: ${Class}ServiceDep,
    params: Annotated[${Class}ListParams, Query()],
) -> Page[${Class}Read] | CursorPage[${Class}Read]:
    """The signed-in user's $human_plural (everyone's for admins), by page or by cursor."""
    if params.uses_cursor:
        return await $plural.list_cursor(user, params, granted=granted)
    return await $plural.list_page(user, params, granted=granted)


@router.get(
    "/{${name}_id}",
    response_model=${Class}Read,
    responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)},
)
async def get_$name(
    ${name}_id: uuid.UUID,
    user: Reader,
    granted: PermissionsDep,
    $plural: ${Class}ServiceDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> ${Class}Read | Response:
    """One $human; answers 304 when `If-None-Match` holds its current `ETag`."""
    $name = await $plural.read(user, ${name}_id, granted=granted)
    if not_modified(if_none_match, $name.version):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag($name.version)}
        )
    response.headers["ETag"] = etag($name.version)
    return $name


@router.patch(
    "/{${name}_id}",
    response_model=${Class}Read,
    responses=problem_responses(404, 409, 412, 413),
)
async def update_$name(
    ${name}_id: uuid.UUID,
    data: ${Class}Update,
    user: Writer,
    granted: PermissionsDep,
    $plural: ${Class}ServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> $Class:
    """Change the fields given; the others keep their values."""
    $name = await $plural.update(
        user, ${name}_id, data, granted=granted, if_match=required_versions(if_match)
    )
    response.headers["ETag"] = etag($name.version)
    return $name


@router.delete(
    "/{${name}_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 412),
)
async def delete_$name(
    ${name}_id: uuid.UUID,
    user: Writer,
    granted: PermissionsDep,
    $plural: ${Class}ServiceDep,
    if_match: IfMatch = None,
) -> Response:
    """Delete a $human."""
    await $plural.delete(user, ${name}_id, granted=granted, if_match=required_versions(if_match))
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
$create_indexes


def downgrade() -> None:
$drop_indexes
    op.drop_table("$plural")
''')

API_TESTS = Template('''\
"""The $plural routes through the HTTP client: ownership, both kinds of pagination, sorting and
filters, conditional requests, idempotent creates, the read cache and the created event."""

from __future__ import annotations

$imports

import pytest
from httpx import AsyncClient
from sqlalchemy import update

from $package.db.session import SessionMaker
from $package.models.$name import $Class
from $package.schemas.$name import ${CONST}_SORT_FIELDS
from $package.services.$name import ${Class}Created
from tests.factories import RecordedEvents, admin_headers, api_key_headers, auth_headers

URL = "/api/v1/$url"
PROBLEM = "application/problem+json"
# A valid body with every field; CHANGES gives `$first` another value.
PAYLOAD = {$payload}
CHANGES = {"$first": $changed}


async def create_$name(client: AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post(URL, json=PAYLOAD, headers=headers)
    assert response.status_code == 201, response.text
    ${name}_id: str = response.json()["id"]
    return ${name}_id


async def listed(client: AsyncClient, headers: dict[str, str], **params: str | int) -> list[str]:
    """The ids of one page of the list, in the order given."""
    response = await client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["items"]]


class TestCreate$Class:
    async def test_creates_for_the_owner_and_records_the_event(
        self, client: AsyncClient, events: RecordedEvents
    ) -> None:
        headers = await auth_headers(client)

        response = await client.post(URL, json=PAYLOAD, headers=headers)
        me = await client.get("/api/v1/users/me", headers=headers)

        assert response.status_code == 201
        body = response.json()
$created_checks
        assert body["version"] == 1
        assert response.headers["ETag"] == '"1"'
        assert body["owner_id"] == me.json()["id"]
        [event] = await events.of(${Class}Created)
        assert event.${name}_id == uuid.UUID(body["id"])
        assert event.actor_id == uuid.UUID(body["owner_id"])

    async def test_anonymous_gets_401(self, client: AsyncClient) -> None:
        response = await client.post(URL, json=PAYLOAD)

        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM

    async def test_unknown_field_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.post(
            URL, json={**PAYLOAD, "owner_id": str(uuid.uuid4())}, headers=headers
        )

        assert response.status_code == 422
$required_test
    async def test_a_retry_with_the_same_idempotency_key_replays_the_first_response(
        self, client: AsyncClient
    ) -> None:
        headers = {**await auth_headers(client), "Idempotency-Key": str(uuid.uuid4())}

        first = await client.post(URL, json=PAYLOAD, headers=headers)
        again = await client.post(URL, json=PAYLOAD, headers=headers)
        other = await client.post(URL, json={**PAYLOAD, **CHANGES}, headers=headers)

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        # The same key with another body is refused rather than answered with the first.
        assert other.status_code == 422
        assert other.headers["content-type"] == PROBLEM
        assert await listed(client, headers) == [first.json()["id"]]


class TestGet$Class:
    async def test_owner_reads_their_${name}_with_its_etag(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        response = await client.get(f"{URL}/{${name}_id}", headers=headers)

        assert response.status_code == 200
        assert response.json()["id"] == ${name}_id
        assert response.headers["ETag"] == '"1"'

    async def test_a_current_if_none_match_is_a_304_without_body(
        self, client: AsyncClient
    ) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        unchanged = await client.get(
            f"{URL}/{${name}_id}", headers={**headers, "If-None-Match": '"1"'}
        )
        await client.patch(f"{URL}/{${name}_id}", json=CHANGES, headers=headers)
        changed = await client.get(
            f"{URL}/{${name}_id}", headers={**headers, "If-None-Match": '"1"'}
        )

        assert unchanged.status_code == 304
        assert unchanged.content == b""
        assert changed.status_code == 200
        assert changed.json()["version"] == 2

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
        assert response.headers["content-type"] == PROBLEM

    async def test_malformed_id_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(f"{URL}/not-a-uuid", headers=headers)

        assert response.status_code == 422

    async def test_reads_come_from_the_cache_until_a_change_returns(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)
        assert (await client.get(f"{URL}/{${name}_id}", headers=headers)).status_code == 200

        # A change behind the service's back is not seen: the read is served from the cache.
        async with session_maker() as session:
            await session.execute(
                update($Class).where($Class.id == uuid.UUID(${name}_id)).values(version=7)
            )
            await session.commit()
        cached = await client.get(f"{URL}/{${name}_id}", headers=headers)
        patched = await client.patch(f"{URL}/{${name}_id}", json=CHANGES, headers=headers)
        fresh = await client.get(f"{URL}/{${name}_id}", headers=headers)

        assert cached.json()["version"] == 1
        assert patched.json()["version"] == fresh.json()["version"] == 8


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

    async def test_cursor_pages_cover_every_${name}_once(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        mine = {await create_$name(client, headers) for _ in range(5)}

        seen: list[str] = []
        params: dict[str, str | int] = {"limit": 2}
        for _ in range(10):
            response = await client.get(URL, params=params, headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"items", "next_cursor"}
            seen += [row["id"] for row in body["items"]]
            if body["next_cursor"] is None:
                break
            params = {"cursor": body["next_cursor"], "limit": 2}

        assert sorted(seen) == sorted(mine)

    @pytest.mark.parametrize("field", ${CONST}_SORT_FIELDS)
    async def test_sorts_by_every_whitelisted_field_both_ways(
        self, client: AsyncClient, field: str
    ) -> None:
        headers = await auth_headers(client)
        mine = {await create_$name(client, headers) for _ in range(3)}

        ascending = await listed(client, headers, sort=field)
        descending = await listed(client, headers, sort=f"-{field}")

        # Equal values (the same body, one transaction) are ordered by id, in the same direction.
        assert set(ascending) == mine
        assert descending == ascending[::-1]

    async def test_a_field_outside_the_sort_whitelist_is_a_422(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(URL, params={"sort": "-owner_id"}, headers=headers)

        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "sort"

    @pytest.mark.parametrize(
        "params",
        [{"page": 1, "cursor": "abc"}, {"page_size": 101}, {"limit": 0}, {"unknown": "x"}],
        ids=["both-kinds", "page-too-large", "limit-zero", "unknown-parameter"],
    )
    async def test_bad_query_parameters_are_a_422(
        self, client: AsyncClient, params: dict[str, str | int]
    ) -> None:
        headers = await auth_headers(client)

        response = await client.get(URL, params=params, headers=headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM

    async def test_a_cursor_it_did_not_issue_is_a_400(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)

        response = await client.get(URL, params={"cursor": "not-a-cursor"}, headers=headers)

        assert response.status_code == 400
        assert response.json()["type"].endswith("/invalid-cursor")

    async def test_filters_by_creation_time(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)
        long_ago = "2000-01-01T00:00:00+00:00"

        assert await listed(client, headers, created_after=long_ago) == [${name}_id]
        assert await listed(client, headers, created_before=long_ago) == []

    async def test_only_admins_list_another_owners_$plural(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        stranger = await auth_headers(client)
        admin = await admin_headers(client, session_maker)
        ${name}_id = await create_$name(client, owner)
        owner_id = (await client.get("/api/v1/users/me", headers=owner)).json()["id"]

        refused = await client.get(URL, params={"owner_id": owner_id}, headers=stranger)

        assert refused.status_code == 403
        assert refused.headers["content-type"] == PROBLEM
        assert await listed(client, admin, owner_id=owner_id) == [${name}_id]


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
        assert response.headers["ETag"] == '"2"'

    @pytest.mark.parametrize("method", ["PATCH", "DELETE"])
    async def test_a_stale_if_match_is_a_412_and_changes_nothing(
        self, client: AsyncClient, method: str
    ) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)
        await client.patch(f"{URL}/{${name}_id}", json=CHANGES, headers=headers)

        response = await client.request(
            method,
            f"{URL}/{${name}_id}",
            json=PAYLOAD if method == "PATCH" else None,
            headers={**headers, "If-Match": '"1"'},
        )
        current = await client.get(f"{URL}/{${name}_id}", headers=headers)

        assert response.status_code == 412
        assert response.headers["content-type"] == PROBLEM
        assert current.json()["version"] == 2

    async def test_a_current_if_match_writes(self, client: AsyncClient) -> None:
        headers = await auth_headers(client)
        ${name}_id = await create_$name(client, headers)

        response = await client.patch(
            f"{URL}/{${name}_id}", json=CHANGES, headers={**headers, "If-Match": '"1"'}
        )

        assert response.status_code == 200
        assert response.json()["version"] == 2

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


class TestAdminVisibility:
    """An admin reaches everyone's $human_plural only with `$plural:admin` in the permissions of
    this request: a session has it, an API key only when it was scoped with it."""

    async def test_an_admin_session_sees_and_changes_everyones_$plural(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        admin = await admin_headers(client, session_maker)
        ${name}_id = await create_$name(client, owner)
        url = f"{URL}/{${name}_id}"

        everyone = await listed(client, admin, page_size=100)
        read = await client.get(url, headers=admin)
        patched = await client.patch(url, json=CHANGES, headers=admin)
        deleted = await client.delete(url, headers=admin)

        assert ${name}_id in everyone
        assert (read.status_code, patched.status_code, deleted.status_code) == (200, 200, 204)

    async def test_an_admins_key_without_${plural}_admin_reaches_only_their_own(
        self, client: AsyncClient, session_maker: SessionMaker
    ) -> None:
        owner = await auth_headers(client)
        admin = await admin_headers(client, session_maker)
        key = await api_key_headers(client, admin, ["$plural:read", "$plural:write"])
        theirs = await create_$name(client, owner)
        mine = await create_$name(client, key)
        url = f"{URL}/{theirs}"

        read = await client.get(url, headers=key)
        patched = await client.patch(url, json=CHANGES, headers=key)
        deleted = await client.delete(url, headers=key)

        # Exactly what a plain user gets: someone else's $human looks missing.
        assert (read.status_code, patched.status_code, deleted.status_code) == (404, 404, 404)
        assert await listed(client, key, page_size=100) == [mine]
        assert await listed(client, key, limit=100) == [mine]
        assert (await client.get(url, headers=owner)).json()["version"] == 1
        assert (await client.get(url, headers=admin)).status_code == 200
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
"""$Class use cases: owners and admins only (by the permissions granted), versioned changes,
cached reads, the created event and the audit trail."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from $package.core.cache import Cache, MemoryCacheStore
from $package.core.cursor import CursorCodec
from $package.core.errors import NotFoundError, PermissionDeniedError, PreconditionFailedError
from $package.core.permissions import Permission, permissions_of
from $package.db.session import UnitOfWork
from $package.models.audit import AuditEntry
from $package.models.user import User
from $package.repositories.$name import ${Class}Repository
from $package.repositories.user import UserRepository
from $package.schemas.$name import ${Class}Create, ${Class}ListParams, ${Class}Update
from $package.services.$name import ${Class}Created, ${Class}Service
from $package.services.outbox import OutboxPublisher
from tests.factories import audit_log, recorded_events, unique_email

# Request bodies as a client sends them; the schemas turn them into typed values.
PAYLOAD = {$payload}
CHANGES = {"$first": $changed}
# An API key scoped to reading and writing $human_plural, whoever owns it.
SCOPED = frozenset({Permission.${PERMISSION}_READ, Permission.${PERMISSION}_WRITE})


async def make_user(uow: UnitOfWork, role: str = "user") -> User:
    user = User(email=unique_email(), password_hash="not-a-real-hash", role=role)
    return await UserRepository(uow.session).add(user)


def grants(user: User) -> frozenset[Permission]:
    """What `user` may do when signed in with a session: everything their role allows."""
    return permissions_of(user.role)


def service(uow: UnitOfWork, cache: Cache | None = None) -> ${Class}Service:
    return ${Class}Service(
        uow,
        ${Class}Repository(uow.session),
        OutboxPublisher(uow, lambda: None),
        CursorCodec("k" * 32),
        cache or Cache(MemoryCacheStore()),
        audit_log(uow),
    )


def new_$name() -> ${Class}Create:
    return ${Class}Create.model_validate(PAYLOAD)


def changes() -> ${Class}Update:
    return ${Class}Update.model_validate(CHANGES)


def original() -> ${Class}Update:
    """Back to the created values: a write that changes nothing is no write (no new version)."""
    return ${Class}Update.model_validate(PAYLOAD)


class TestVisibility:
    async def test_owner_and_admin_see_the_$name(self, uow: UnitOfWork) -> None:
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())

        assert (await $plural.get(owner, $name.id, granted=grants(owner))).id == $name.id
        assert (await $plural.read(admin, $name.id, granted=grants(admin))).id == $name.id

    async def test_someone_else_gets_not_found_like_a_missing_$name(self, uow: UnitOfWork) -> None:
        owner, stranger = await make_user(uow), await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())
        granted = grants(stranger)

        with pytest.raises(NotFoundError):
            await $plural.read(stranger, $name.id, granted=granted)
        with pytest.raises(NotFoundError):
            await $plural.update(stranger, $name.id, changes(), granted=granted)
        with pytest.raises(NotFoundError):
            await $plural.delete(stranger, $name.id, granted=granted)
        with pytest.raises(NotFoundError):
            await $plural.get(stranger, uuid.uuid4(), granted=granted)

    async def test_an_admin_without_${plural}_admin_reaches_only_their_own(
        self, uow: UnitOfWork
    ) -> None:
        owner, admin = await make_user(uow), await make_user(uow, role="admin")
        $plural = service(uow)
        theirs = await $plural.create(owner, new_$name())
        mine = await $plural.create(admin, new_$name())

        with pytest.raises(NotFoundError):
            await $plural.read(admin, theirs.id, granted=SCOPED)
        with pytest.raises(NotFoundError):
            await $plural.update(admin, theirs.id, changes(), granted=SCOPED)
        listed = await $plural.list_page(admin, ${Class}ListParams(), granted=SCOPED)
        by_cursor = await $plural.list_cursor(admin, ${Class}ListParams(limit=100), granted=SCOPED)

        assert [row.id for row in listed.items] == [mine.id]
        assert [row.id for row in by_cursor.items] == [mine.id]

    async def test_list_shows_own_${plural}_and_admins_see_all(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        $plural = service(uow)
        mine = await $plural.create(first, new_$name())
        theirs = await $plural.create(second, new_$name())
        params = ${Class}ListParams(page_size=100)

        own = await $plural.list_page(first, params, granted=grants(first))
        everything = await $plural.list_page(admin, params, granted=grants(admin))

        assert [row.id for row in own.items] == [mine.id]
        assert own.total == 1
        assert {mine.id, theirs.id} <= {row.id for row in everything.items}

    async def test_listing_another_owner_is_refused_and_audited(self, uow: UnitOfWork) -> None:
        first, second = await make_user(uow), await make_user(uow)
        admin = await make_user(uow, role="admin")
        $plural = service(uow)
        theirs = await $plural.create(second, new_$name())

        with pytest.raises(PermissionDeniedError, match="$plural:admin"):
            await $plural.list_page(
                first, ${Class}ListParams(owner_id=second.id), granted=grants(first)
            )
        listed = await $plural.list_page(
            admin, ${Class}ListParams(owner_id=second.id), granted=grants(admin)
        )
        await uow.commit()

        assert [row.id for row in listed.items] == [theirs.id]
        denials = await uow.session.scalars(
            select(AuditEntry.changes).where(
                AuditEntry.action == "permission.denied", AuditEntry.actor_id == first.id
            )
        )
        assert list(denials) == [{"required": ["$plural:admin"], "mode": "all"}]


class TestChanges:
    async def test_create_records_the_event_and_the_audit_entry(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $name = await service(uow).create(owner, new_$name())
        await uow.commit()

        recorded = await recorded_events(uow.session, ${Class}Created)
        audited = await uow.session.scalars(
            select(AuditEntry.action).where(AuditEntry.resource_id == str($name.id))
        )
        assert [event.actor_id for event in recorded if event.${name}_id == $name.id] == [owner.id]
        assert list(audited) == ["$name.create"]

    async def test_update_changes_the_field_and_bumps_the_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())
        version = $name.version

        updated = await $plural.update(owner, $name.id, changes(), granted=grants(owner))

        assert updated.$first == changes().$first
        assert updated.version == version + 1

    async def test_if_match_allows_only_the_current_version(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())
        granted = grants(owner)
        await $plural.update(owner, $name.id, changes(), granted=granted)

        with pytest.raises(PreconditionFailedError):
            await $plural.update(owner, $name.id, changes(), granted=granted, if_match={1})
        with pytest.raises(PreconditionFailedError):
            await $plural.delete(owner, $name.id, granted=granted, if_match={1})
        updated = await $plural.update(owner, $name.id, original(), granted=granted, if_match={2})

        assert updated.version == 3

    async def test_delete_removes_it(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        $name = await $plural.create(owner, new_$name())

        await $plural.delete(owner, $name.id, granted=grants(owner))

        with pytest.raises(NotFoundError):
            await $plural.get(owner, $name.id, granted=grants(owner))


class TestCachedReads:
    async def test_reads_come_from_the_cache_until_a_change_commits(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        $plural = service(uow)
        granted = grants(owner)
        $name = await $plural.create(owner, new_$name())
        await uow.commit()
        assert (await $plural.read(owner, $name.id, granted=granted)).version == 1

        # A change behind the service's back is not seen: the read is served from the cache.
        $name.$first = ${Class}Create.model_validate({**PAYLOAD, **CHANGES}).$first
        await uow.session.flush()
        assert (await $plural.read(owner, $name.id, granted=granted)).version == 1

        await $plural.update(owner, $name.id, original(), granted=granted)
        # Not committed yet: the cache still holds the committed state.
        assert (await $plural.read(owner, $name.id, granted=granted)).version == 1
        await uow.commit()
        assert (await $plural.read(owner, $name.id, granted=granted)).version == 3
''')

REPOSITORY_TESTS = Template('''\
"""Queries on $plural against PostgreSQL: lookups, filters, offset pages and keyset pages in
every whitelisted sort."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from $package.db.session import UnitOfWork
from $package.models.$name import $Class
from $package.models.user import User
from $package.repositories.$name import ${Class}Filter, ${Class}Repository
from $package.repositories.user import UserRepository
from $package.schemas.$name import ${CONST}_SORT_FIELDS, ${Class}Create
from $package.schemas.pagination import parse_sort
from tests.factories import unique_email

PAYLOAD = {$payload}
SORTS = [f"{direction}{field}" for field in ${CONST}_SORT_FIELDS for direction in ("", "-")]


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
        where = ${Class}Filter(owner_id=owner.id)
        sort = parse_sort("-created_at", ${CONST}_SORT_FIELDS)

        pages = [
            await repository.list_page(where, sort, offset=offset, limit=2)
            for offset in (0, 2, 4)
        ]

        seen = [row.id for rows, _ in pages for row in rows]
        assert sorted(seen) == sorted(mine)
        assert {total for _, total in pages} == {5}

    async def test_without_owner_lists_everyone(self, uow: UnitOfWork) -> None:
        repository = ${Class}Repository(uow.session)
        first = await add_$name(repository, await make_user(uow))
        second = await add_$name(repository, await make_user(uow))

        rows, total = await repository.list_page(
            ${Class}Filter(), parse_sort("created_at", ${CONST}_SORT_FIELDS), offset=0, limit=100
        )

        assert {first.id, second.id} <= {row.id for row in rows}
        assert total >= 2

    async def test_filters_by_creation_time(self, uow: UnitOfWork) -> None:
        owner = await make_user(uow)
        repository = ${Class}Repository(uow.session)
        $name = await add_$name(repository, owner)
        long_ago = datetime(2000, 1, 1, tzinfo=UTC)
        sort = parse_sort("created_at", ${CONST}_SORT_FIELDS)

        after, _ = await repository.list_page(
            ${Class}Filter(owner_id=owner.id, created_after=long_ago), sort, offset=0, limit=10
        )
        before, _ = await repository.list_page(
            ${Class}Filter(owner_id=owner.id, created_before=long_ago), sort, offset=0, limit=10
        )

        assert [row.id for row in after] == [$name.id]
        assert list(before) == []


class TestListAfter:
    @pytest.mark.parametrize("sort", SORTS)
    async def test_keyset_pages_cover_every_row_once(self, uow: UnitOfWork, sort: str) -> None:
        owner = await make_user(uow)
        repository = ${Class}Repository(uow.session)
        mine = {(await add_$name(repository, owner)).id for _ in range(5)}
        where, order = ${Class}Filter(owner_id=owner.id), parse_sort(sort, ${CONST}_SORT_FIELDS)

        seen: list[uuid.UUID] = []
        after = None
        for _ in range(10):
            rows, position = await repository.list_after(where, order, after=after, limit=2)
            seen += [row.id for row in rows]
            if position is None:
                break
            # Through the cursor's JSON form and back, as a client's next request would.
            after = repository.ordering(order).parse(position)

        assert sorted(seen) == sorted(mine)


class TestDelete:
    async def test_removes_the_row(self, uow: UnitOfWork) -> None:
        repository = ${Class}Repository(uow.session)
        $name = await add_$name(repository, await make_user(uow))

        await repository.delete($name)

        assert await repository.get($name.id) is None
''')
