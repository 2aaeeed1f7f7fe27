"""`require_permissions(...)`: the route dependency that checks what the caller may do.

A caller without the permission gets 403; the denial is logged and audited with who asked for
what.
Ownership is not a permission: someone else's item stays a 404 (checked in the service).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from {{ cookiecutter.project_slug }}.api.deps import CallerDep, ContainerDep, UnitOfWorkDep
from {{ cookiecutter.project_slug }}.core.errors import PermissionDeniedError
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.permissions import Permission, holds
from {{ cookiecutter.project_slug }}.models.user import User

log = get_logger(__name__)


def require_permissions(
    *required: Permission, any_of: bool = False
) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency returning the signed-in user if they hold every permission in `required`
    (or, with `any_of=True`, at least one): through their role, and for an API key also
    through its scopes."""
    if not required:
        raise ValueError("name at least one permission")
    names = [permission.value for permission in required]

    # The audit log is built only for a denial, not as a dependency of every request.
    async def check(caller: CallerDep, container: ContainerDep, uow: UnitOfWorkDep) -> User:
        user = caller.user
        if not holds(caller.permissions, required, any_of=any_of):
            log.warning(
                "permission denied",
                user_id=str(user.id),
                role=user.role,
                required=names,
                mode="any" if any_of else "all",
            )
            # The request's transaction rolls back with the 403; the denial is kept regardless.
            await container.audit(uow).record_alone(
                "permission.denied",
                actor=user.id,
                resource="permission",
                changes={"required": names, "mode": "any" if any_of else "all"},
            )
            joined = (" or " if any_of else " and ").join(names)
            raise PermissionDeniedError(f"this operation needs the {joined} permission")
        return user

    return check
