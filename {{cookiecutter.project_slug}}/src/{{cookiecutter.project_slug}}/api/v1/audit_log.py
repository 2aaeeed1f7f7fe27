"""The audit trail, for administrators: read-only, newest first, paged by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from {{ cookiecutter.project_slug }}.api.deps import AuditLogDep
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.core.errors import ValidationFailedError
from {{ cookiecutter.project_slug }}.core.permissions import Permission
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.schemas.audit import (
    MAX_AUDIT_PAGE,
    AuditEntryRead,
    AuditPage,
    decode_cursor,
    encode_cursor,
)

router = APIRouter(prefix="/audit-log", tags=["audit"], responses=problem_responses(401, 403))

UsersAdmin = Annotated[User, Depends(require_permissions(Permission.USERS_ADMIN))]


@router.get("", response_model=AuditPage, responses=problem_responses(422))
async def list_audit_entries(
    _: UsersAdmin,
    audit: AuditLogDep,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 20,
) -> AuditPage:
    """Audit entries, newest first (`users:admin`)."""
    before_id = None
    if cursor is not None:
        before_id = decode_cursor(cursor)
        if before_id is None:
            raise ValidationFailedError(
                "the cursor is not one this service issued; start again without it",
                errors=[{"field": "cursor", "message": "invalid cursor", "type": "cursor"}],
            )
    entries = await audit.page(before_id=before_id, limit=limit + 1)
    shown = entries[:limit]
    return AuditPage(
        items=[AuditEntryRead.model_validate(entry) for entry in shown],
        next_cursor=encode_cursor(shown[-1].id) if len(entries) > limit else None,
    )
