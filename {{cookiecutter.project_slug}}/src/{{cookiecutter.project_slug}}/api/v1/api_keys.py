"""The signed-in user's API keys: create (the key is shown once), list, revoke.

Managing keys needs a login session: an API key cannot create or revoke keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Response, status

from {{ cookiecutter.project_slug }}.api.deps import ApiKeyServiceDep, SessionUser
from {{ cookiecutter.project_slug }}.api.openapi import problem_responses
from {{ cookiecutter.project_slug }}.models.api_key import ApiKey
from {{ cookiecutter.project_slug }}.schemas.api_key import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
)

router = APIRouter(prefix="/api-keys", tags=["api-keys"], responses=problem_responses(401, 403))


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(413, 415, 422),
)
async def create_api_key(
    data: ApiKeyCreate, user: SessionUser, api_keys: ApiKeyServiceDep
) -> ApiKeyCreated:
    """Create a key with some of one's permissions; the response is the only copy of it."""
    api_key, key = await api_keys.create(user, data)
    listed = ApiKeyRead.model_validate(api_key)
    return ApiKeyCreated(**listed.model_dump(), key=key)


@router.get("", response_model=list[ApiKeyRead])
async def list_api_keys(user: SessionUser, api_keys: ApiKeyServiceDep) -> Sequence[ApiKey]:
    """One's keys that are not revoked, without their secrets."""
    return await api_keys.list_active(user)


@router.delete(
    "/{api_key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
)
async def revoke_api_key(
    api_key_id: uuid.UUID, user: SessionUser, api_keys: ApiKeyServiceDep
) -> Response:
    """Revoke a key; requests with it are refused from now on."""
    await api_keys.revoke(user, api_key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
