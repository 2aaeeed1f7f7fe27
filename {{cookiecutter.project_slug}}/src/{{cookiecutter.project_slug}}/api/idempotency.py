"""`Idempotency-Key` for POST routes: a retried request gets the first response, not a second
resource.

A route passes its work to `idempotent(...)`. Without the header the work simply runs. With it,
the first request runs the work and its response (status, body, headers) is stored with the
key, in the same transaction; a retry with the same key and body gets that response back with
`Idempotent-Replayed: true`; the same key with another body is a 422. Only successful
responses are stored: an error rolls the claim back, so the client may retry with the key.
Keys are per user and expire after `IDEMPOTENCY_KEY_TTL_SECONDS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

from fastapi import Header, Request, Response
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.idempotency import IdempotencyService

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="A unique value per intended operation (a UUID, say); a retry with the "
        "same key and body gets the first response instead of creating again.",
    ),
]

JSON_MEDIA_TYPE = "application/json"


def request_hash(request: Request, payload: BaseModel) -> str:
    """The request's identity: method, path and the canonical form of its validated body."""
    canonical = payload.model_dump_json()
    text = f"{request.method} {request.url.path}\n{canonical}"
    return hashlib.sha256(text.encode()).hexdigest()


async def idempotent(
    *,
    service: IdempotencyService,
    user: User,
    key: str | None,
    request: Request,
    payload: BaseModel,
    status_code: int,
    work: Callable[[], Awaitable[tuple[BaseModel, Mapping[str, str]]]],
) -> Response:
    """Run `work` (which returns the response model and headers) at most once per key."""
    if key is not None:
        stored = await service.begin(user.id, key, request_hash(request, payload))
        if stored is not None:
            replayed = {**stored.headers, "Idempotent-Replayed": "true"}
            return Response(
                stored.body, stored.status_code, headers=replayed, media_type=JSON_MEDIA_TYPE
            )
    model, headers = await work()
    body = model.model_dump_json()
    if key is not None:
        await service.complete(user.id, key, status_code=status_code, body=body, headers=headers)
    return Response(body, status_code, headers=dict(headers), media_type=JSON_MEDIA_TYPE)
