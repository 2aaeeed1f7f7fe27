"""`require_flag(...)`: the route dependency that hides a feature its flag keeps off.

A caller for whom the flag is off gets the same 404 problem as for a route that does not exist,
so a hidden feature cannot be discovered by probing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from {{ cookiecutter.project_slug }}.api.deps import FeatureFlagsDep
from {{ cookiecutter.project_slug }}.core.errors import NotFoundError
from {{ cookiecutter.project_slug }}.middleware.auth import credentials_of
from {{ cookiecutter.project_slug }}.services.feature_flag import FeatureFlags


def _caller_id(request: Request) -> uuid.UUID | None:
    # The id the verified token names: targeting needs no database read of the account.
    principal = credentials_of(request.scope).principal
    if principal is None:
        return None
    try:
        return uuid.UUID(principal.user_id)
    except ValueError:
        return None


def require_flag(name: str) -> Callable[[Request, FeatureFlags], Coroutine[Any, Any, None]]:
    """A dependency that answers 404 unless the flag `name` is on for the caller (anonymous
    callers get it only when the flag is on for everyone)."""

    async def check(request: Request, flags: FeatureFlagsDep) -> None:
        if not await flags.is_enabled_for(name, _caller_id(request)):
            raise NotFoundError(f"no route matches {request.method} {request.url.path}")

    return check
