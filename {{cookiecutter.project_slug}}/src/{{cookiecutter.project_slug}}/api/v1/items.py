"""The example domain: items owned by users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from {{ cookiecutter.project_slug }}.api.deps import ItemServiceDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.item import Item
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.item import ItemCreate, ItemRead, ItemUpdate
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams

router = APIRouter(prefix="/items", tags=["items"], responses=problem_responses(401, 403, 422))

Reader = Annotated[User, Depends(require_permissions(Permission.ITEMS_READ))]
Writer = Annotated[User, Depends(require_permissions(Permission.ITEMS_WRITE))]


@router.post(
    "",
    response_model=ItemRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(413),
)
async def create_item(data: ItemCreate, user: Writer, items: ItemServiceDep) -> Item:
    """Create an item owned by the signed-in user."""
    return await items.create(user, data)


@router.get("", response_model=Page[ItemRead])
async def list_items(
    user: Reader, items: ItemServiceDep, params: Annotated[PageParams, Query()]
) -> Page[ItemRead]:
    """The signed-in user's items, newest first (every item for admins)."""
    return await items.list_page(user, params)


@router.get("/{item_id}", response_model=ItemRead, responses=problem_responses(404))
async def get_item(item_id: uuid.UUID, user: Reader, items: ItemServiceDep) -> ItemRead:
    """One item."""
    return await items.read(user, item_id)


@router.patch("/{item_id}", response_model=ItemRead, responses=problem_responses(404, 413))
async def update_item(
    item_id: uuid.UUID, data: ItemUpdate, user: Writer, items: ItemServiceDep
) -> Item:
    """Change an item's title or description."""
    return await items.update(user, item_id, data)


@router.delete(
    "/{item_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_item(item_id: uuid.UUID, user: Writer, items: ItemServiceDep) -> Response:
    """Delete an item."""
    await items.delete(user, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
