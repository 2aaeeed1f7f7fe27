"""The example domain: items owned by users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from {{ cookiecutter.project_slug }}.api.conditional import (
    NOT_MODIFIED_RESPONSE,
    IfMatch,
    IfNoneMatch,
    etag,
    not_modified,
    required_versions,
)
from {{ cookiecutter.project_slug }}.api.deps import (
    IdempotencyServiceDep,
    ItemServiceDep,
    PermissionsDep,
)
from {{ cookiecutter.project_slug }}.api.idempotency import IdempotencyKeyHeader, idempotent
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.item import (
    ItemCreate,
    ItemListParams,
    ItemRead,
    ItemUpdate,
)
from {{ cookiecutter.project_slug }}.schemas.pagination import CursorPage, Page

router = APIRouter(prefix="/items", tags=["items"], responses=problem_responses(401, 403, 422))

Reader = Annotated[User, Depends(require_permissions(Permission.ITEMS_READ))]
Writer = Annotated[User, Depends(require_permissions(Permission.ITEMS_WRITE))]


@router.post(
    "",
    response_model=ItemRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 413),
)
async def create_item(
    data: ItemCreate,
    user: Writer,
    items: ItemServiceDep,
    idempotency: IdempotencyServiceDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Create an item owned by the signed-in user; retry safely with `Idempotency-Key`."""

    async def create() -> tuple[ItemRead, dict[str, str]]:
        item = await items.create(user, data)
        return ItemRead.model_validate(item), {"ETag": etag(item.version)}

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
    response_model=Page[ItemRead] | CursorPage[ItemRead],
    responses=problem_responses(400),
)
async def list_items(
    user: Reader,
    granted: PermissionsDep,
    items: ItemServiceDep,
    params: Annotated[ItemListParams, Query()],
) -> Page[ItemRead] | CursorPage[ItemRead]:
    """The signed-in user's items (every item for admins), by page or by cursor."""
    if params.uses_cursor:
        return await items.list_cursor(user, params, granted=granted)
    return await items.list_page(user, params, granted=granted)


@router.get(
    "/{item_id}",
    response_model=ItemRead,
    responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)},
)
async def get_item(
    item_id: uuid.UUID,
    user: Reader,
    granted: PermissionsDep,
    items: ItemServiceDep,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> ItemRead | Response:
    """One item; answers 304 when `If-None-Match` holds its current `ETag`."""
    item = await items.read(user, item_id, granted=granted)
    if not_modified(if_none_match, item.version):
        return Response(
            status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(item.version)}
        )
    response.headers["ETag"] = etag(item.version)
    return item


@router.patch(
    "/{item_id}",
    response_model=ItemRead,
    responses=problem_responses(404, 409, 412, 413),
)
async def update_item(
    item_id: uuid.UUID,
    data: ItemUpdate,
    user: Writer,
    granted: PermissionsDep,
    items: ItemServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> Item:
    """Change an item's title or description."""
    item = await items.update(
        user, item_id, data, granted=granted, if_match=required_versions(if_match)
    )
    response.headers["ETag"] = etag(item.version)
    return item


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 412),
)
async def delete_item(
    item_id: uuid.UUID,
    user: Writer,
    granted: PermissionsDep,
    items: ItemServiceDep,
    if_match: IfMatch = None,
) -> Response:
    """Delete an item."""
    await items.delete(user, item_id, granted=granted, if_match=required_versions(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
