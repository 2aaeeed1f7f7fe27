"""Roles and what they may do. Routes ask for permissions, never for roles, so a new role is a
line in `ROLE_PERMISSIONS` and no route changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Permission(StrEnum):
    ITEMS_READ = "items:read"
    ITEMS_WRITE = "items:write"
    ITEMS_ADMIN = "items:admin"
    """Read and change everyone's items, not only one's own."""
    USERS_ADMIN = "users:admin"
    """List, read and change every account."""


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    Role.USER: frozenset({Permission.ITEMS_READ, Permission.ITEMS_WRITE}),
    Role.ADMIN: frozenset(Permission),
}


def permissions_of(role: str) -> frozenset[Permission]:
    """An unknown role (left in the database by an older version) may do nothing."""
    return ROLE_PERMISSIONS.get(role, frozenset())


def is_granted(role: str, required: Iterable[Permission], *, any_of: bool = False) -> bool:
    """Whether `role` holds every permission in `required` (or, with `any_of`, at least one)."""
    return holds(permissions_of(role), required, any_of=any_of)


def holds(
    granted: frozenset[Permission], required: Iterable[Permission], *, any_of: bool = False
) -> bool:
    """Whether `granted` holds every permission in `required` (or, with `any_of`, at least one)."""
    required = list(required)
    if any_of:
        return any(permission in granted for permission in required)
    return all(permission in granted for permission in required)
