"""`audit verify` as operators run it: a process against a database whose log was tampered with
the only way left, as a superuser with the append-only trigger disabled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from {{ cookiecutter.project_slug }}.container import build_container
from tests.conftest import asyncpg_dsn, make_settings
from tests.processes import fresh_database, run_cli, service_env
from tests.services import ServiceUrls

pytestmark = pytest.mark.slow


@pytest.fixture
async def audited_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of its own holding four committed audit entries."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        async with build_container(make_settings(database_url=url), role="cli") as container:
            for number in range(4):
                async with container.unit_of_work() as uow:
                    container.audit(uow).record(
                        "thing.create", actor=None, resource="thing", resource_id=number
                    )
        yield url


async def entry_ids(url: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return [row["id"] for row in await connection.fetch("SELECT id FROM audit_log ORDER BY id")]
    finally:
        await connection.close()


async def tamper(url: str, statement: str, entry_id: int) -> None:
    """What only a superuser can do: change entries with the append-only trigger disabled."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        await connection.execute(statement, entry_id)
        await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    finally:
        await connection.close()


async def verify(url: str) -> tuple[int, str]:
    result = await run_cli("audit", "verify", env=service_env(DATABASE_URL=url))
    return result.returncode, result.stdout + result.stderr


async def test_an_intact_log_verifies(audited_url: str) -> None:
    code, output = await verify(audited_url)

    assert code == 0, output
    assert "audit log intact: 4 entries verified" in output


async def test_a_changed_entry_exits_1_naming_it(audited_url: str) -> None:
    ids = await entry_ids(audited_url)
    await tamper(
        audited_url, """UPDATE audit_log SET changes = '{"forged": 1}' WHERE id = $1""", ids[2]
    )

    code, output = await verify(audited_url)

    assert code == 1
    assert f"audit log entry {ids[2]} does not verify" in output
    assert "the 2 entries before it are intact" in output


async def test_a_deleted_entry_exits_1_naming_the_next(audited_url: str) -> None:
    ids = await entry_ids(audited_url)
    await tamper(audited_url, "DELETE FROM audit_log WHERE id = $1", ids[1])

    code, output = await verify(audited_url)

    assert code == 1
    assert f"audit log entry {ids[2]} does not verify" in output


async def test_the_trigger_refuses_even_the_superuser_while_enabled(audited_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(audited_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute("DELETE FROM audit_log")
    finally:
        await connection.close()

    assert (await verify(audited_url))[0] == 0
