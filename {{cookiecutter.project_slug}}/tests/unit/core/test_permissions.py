"""Roles map to permissions; `require_permissions` refuses, logs and audits what a role lacks."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, cast

import pytest

from {{ cookiecutter.project_slug }}.api.deps import Caller
from {{ cookiecutter.project_slug }}.api.permissions import require_permissions
from {{ cookiecutter.project_slug }}.container import Container
from {{ cookiecutter.project_slug }}.core.errors import PermissionDeniedError
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.core.permissions import (
    Permission,
    Role,
    is_granted,
    permissions_of,
)
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.models.user import User
from {{ cookiecutter.project_slug }}.services.audit import AuditLog


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The real logging pipeline in JSON, written to a buffer."""
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    yield buffer
    configure_logging("WARNING", "console")


class RecordingAuditLog(AuditLog):
    """Keeps what would be written in a transaction of its own (written for real in
    tests/integration/services/test_audit.py)."""

    def __init__(self) -> None:  # no unit of work: nothing here touches a database
        self.alone: list[tuple[str, uuid.UUID | None, str, Mapping[str, object] | None]] = []

    async def record_alone(
        self,
        action: str,
        *,
        actor: uuid.UUID | None,
        resource: str,
        resource_id: object = None,
        changes: Mapping[str, object] | None = None,
    ) -> None:
        assert resource_id is None
        self.alone.append((action, actor, resource, changes))


class AuditOnlyContainer:
    """Stands in for the composition root: a denial asks it for the audit log, nothing else."""

    def __init__(self) -> None:
        self.log = RecordingAuditLog()

    def audit(self, _uow: object) -> AuditLog:
        return self.log


async def run_check(
    check: Callable[..., Coroutine[Any, Any, User]],
    user: User,
    granted: frozenset[Permission],
    container: AuditOnlyContainer,
) -> User:
    caller = Caller(user, granted, via_api_key=False)
    # The unit of work is only handed on to the container's audit log.
    return await check(caller, cast(Container, container), cast(UnitOfWork, None))


def test_members_manage_items_but_not_accounts() -> None:
    assert is_granted(Role.USER, [Permission.ITEMS_READ, Permission.ITEMS_WRITE])
    assert not is_granted(Role.USER, [Permission.USERS_ADMIN])
    assert not is_granted(Role.USER, [Permission.ITEMS_ADMIN])


def test_admins_hold_every_permission() -> None:
    assert is_granted(Role.ADMIN, list(Permission))


def test_an_unknown_role_may_do_nothing() -> None:
    assert not is_granted("retired-role", [Permission.ITEMS_READ])


def test_any_of_needs_one_permission_all_needs_every_one() -> None:
    wanted = [Permission.ITEMS_READ, Permission.USERS_ADMIN]

    assert is_granted(Role.USER, wanted, any_of=True)
    assert not is_granted(Role.USER, wanted)


async def test_a_denial_is_a_403_logged_with_the_user_and_the_permission(
    json_log: io.StringIO,
) -> None:
    member = User(email="member@example.com", password_hash="x", role=Role.USER)
    check = require_permissions(Permission.USERS_ADMIN)

    container = AuditOnlyContainer()

    with pytest.raises(PermissionDeniedError, match="users:admin"):
        await run_check(check, member, permissions_of(member.role), container)

    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    [denial] = [line for line in lines if line["event"] == "permission denied"]
    assert denial["required"] == ["users:admin"]
    assert denial["role"] == "user"
    assert "user_id" in denial
    assert container.log.alone == [
        ("permission.denied", member.id, "permission", {"required": ["users:admin"], "mode": "all"})
    ]


async def test_a_granted_permission_returns_the_user() -> None:
    admin = User(email="admin@example.com", password_hash="x", role=Role.ADMIN)

    container = AuditOnlyContainer()
    check = require_permissions(Permission.USERS_ADMIN)

    assert await run_check(check, admin, permissions_of(admin.role), container) is admin
    assert container.log.alone == []


async def test_an_api_key_without_the_scope_is_denied_what_the_role_allows() -> None:
    admin = User(email="admin@example.com", password_hash="x", role=Role.ADMIN)
    check = require_permissions(Permission.USERS_ADMIN)

    with pytest.raises(PermissionDeniedError):
        await run_check(check, admin, frozenset({Permission.ITEMS_READ}), AuditOnlyContainer())


def test_naming_no_permission_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one"):
        require_permissions()
