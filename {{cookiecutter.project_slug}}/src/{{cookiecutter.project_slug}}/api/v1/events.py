"""Admin access to the outbox: dead-lettered events, and sending one through again."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from {{ cookiecutter.project_slug }}.api.deps import OutboxServiceDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.outbox import OutboxEvent
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.outbox import OutboxEventRead
from {{ cookiecutter.project_slug }}.schemas.pagination import Page, PageParams

router = APIRouter(
    prefix="/events",
    tags=["events"],
    responses=problem_responses(401, 403),
)

EventsAdmin = Annotated[User, Depends(require_permissions(Permission.USERS_ADMIN))]


@router.get("/dead-letters", response_model=Page[OutboxEventRead], responses=problem_responses(422))
async def list_dead_letters(
    _: EventsAdmin, outbox: OutboxServiceDep, params: Annotated[PageParams, Query()]
) -> Page[OutboxEventRead]:
    """Events whose delivery failed too often, oldest first (`users:admin`)."""
    return await outbox.list_dead(params)


@router.post(
    "/{event_id}/redrive",
    response_model=OutboxEventRead,
    responses=problem_responses(404, 409, 422),
)
async def redrive_event(
    event_id: uuid.UUID, _: EventsAdmin, outbox: OutboxServiceDep
) -> OutboxEvent:
    """Deliver a dead-lettered event again, with a fresh count of attempts (`users:admin`)."""
    return await outbox.redrive(event_id)
