"""The console script, run as a process with an explicit environment, as operators run it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from {{ cookiecutter.project_slug }}.core.config import EXAMPLE_SECRET_KEY
from {{ cookiecutter.project_slug }}.core.encryption import Encryptor, generate_key
from {{ cookiecutter.project_slug }}.core.security import verify_password
from tests.conftest import asyncpg_dsn
from tests.factories import PASSWORD, unique_email
from tests.processes import (
    SLUG,
    Finished,
    fresh_database,
    head_revision,
    run_cli,
    run_command,
    service_env,
)
from tests.services import ServiceUrls

CONSOLE_SCRIPT = str(Path(sys.executable).with_name(SLUG))

# Every test starts the command line as a process (about two seconds of imports each).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def migrated_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database of this module's own: the commands here commit for real."""
    async with fresh_database(service_urls.database, migrated=True) as url:
        yield url


async def fetch_user(url: str, email: str) -> asyncpg.Record | None:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row: asyncpg.Record | None = await connection.fetchrow(
            "SELECT role, is_active, password_hash FROM users WHERE email = $1", email
        )
        return row
    finally:
        await connection.close()


async def create_superuser(url: str, email: str, password: str = PASSWORD) -> Finished:
    return await run_cli(
        "users",
        "create-superuser",
        "--email",
        email,
        "--password-stdin",
        env=service_env(DATABASE_URL=url),
        stdin=password + "\n",
    )


class TestCreateSuperuser:
    async def test_creates_an_active_admin(self, migrated_url: str) -> None:
        email = unique_email()
        result = await create_superuser(migrated_url, email)

        assert result.returncode == 0, result.stderr
        assert f"created admin {email}" in result.stdout
        user = await fetch_user(migrated_url, email)
        assert user is not None
        assert user["role"] == "admin"
        assert user["is_active"] is True
        assert verify_password(PASSWORD, user["password_hash"])

    async def test_weak_password_is_refused_with_the_rule(self, migrated_url: str) -> None:
        email = unique_email()
        result = await create_superuser(migrated_url, email, "password")

        assert result.returncode != 0
        assert "password is too common" in result.stderr
        assert "Traceback" not in result.stderr
        assert await fetch_user(migrated_url, email) is None

    async def test_existing_email_is_refused(self, migrated_url: str) -> None:
        email = unique_email()
        first = await create_superuser(migrated_url, email)
        second = await create_superuser(migrated_url, email)

        assert first.returncode == 0, first.stderr
        assert second.returncode != 0
        assert second.stderr.startswith("error:")
        assert "Traceback" not in second.stderr

    async def test_invalid_email_is_refused(self, migrated_url: str) -> None:
        result = await create_superuser(migrated_url, "not-an-address")
        assert result.returncode != 0
        assert "invalid e-mail or password" in result.stderr


async def test_serve_refuses_unsafe_production_settings_naming_each_variable() -> None:
    env = service_env(
        ENVIRONMENT="production",
        SECRET_KEY=EXAMPLE_SECRET_KEY,
        DATABASE_URL="sqlite+aiosqlite:///var/service.db",
        REDIS_URL=None,
    )
    # If the refusal were missing the server would start; the time limit turns that into a failure.
    result = await run_command(CONSOLE_SCRIPT, "serve", "--port", "1", env=env, limit_seconds=30)

    assert result.returncode == 2, result.stderr
    assert "SECRET_KEY" in result.stderr
    assert "DATABASE_URL" in result.stderr
{%- if cookiecutter.use_redis == 'y' %}
    assert "REDIS_URL" in result.stderr
{%- endif %}
    assert "Traceback" not in result.stderr


async def test_db_current_prints_the_head_revision(migrated_url: str) -> None:
    result = await run_cli("db", "current", env=service_env(DATABASE_URL=migrated_url))
    assert result.returncode == 0, result.stderr
    assert f"{head_revision()} (head)" in result.stdout


async def test_db_upgrade_on_a_database_at_head_changes_nothing(migrated_url: str) -> None:
    result = await run_cli("db", "upgrade", env=service_env(DATABASE_URL=migrated_url))
    assert result.returncode == 0, result.stderr
    assert "Running upgrade" not in result.stderr


class TestReencrypt:
    async def test_rewrites_values_under_the_newest_key(self, migrated_url: str) -> None:
        old, new = generate_key(), generate_key()
        email = unique_email()
        connection = await asyncpg.connect(asyncpg_dsn(migrated_url))
        try:
            await connection.execute(
                "INSERT INTO users (id, email, password_hash, phone) VALUES ($1, $2, 'x', $3)",
                uuid.uuid4(),
                email,
                Encryptor([old.encode()]).encrypt("+1 555 0100"),
            )
        finally:
            await connection.close()

        result = await run_cli(
            "db",
            "reencrypt",
            "--batch-size",
            "1",
            env=service_env(DATABASE_URL=migrated_url, ENCRYPTION_KEYS=f"{new},{old}"),
        )

        assert result.returncode == 0, result.stderr
        assert "re-encrypted" in result.stdout
        connection = await asyncpg.connect(asyncpg_dsn(migrated_url))
        try:
            stored = await connection.fetchval("SELECT phone FROM users WHERE email = $1", email)
        finally:
            await connection.close()
        assert Encryptor([new.encode()]).decrypt(stored) == "+1 555 0100"

    async def test_a_missing_old_key_fails_saying_what_to_do(self, migrated_url: str) -> None:
        email = unique_email()
        connection = await asyncpg.connect(asyncpg_dsn(migrated_url))
        try:
            await connection.execute(
                "INSERT INTO users (id, email, password_hash, phone) VALUES ($1, $2, 'x', $3)",
                uuid.uuid4(),
                email,
                Encryptor([generate_key().encode()]).encrypt("+1 555 0100"),
            )
        finally:
            await connection.close()

        result = await run_cli(
            "db",
            "reencrypt",
            env=service_env(DATABASE_URL=migrated_url, ENCRYPTION_KEYS=generate_key()),
        )

        assert result.returncode == 1
        assert "add the key it was written with" in result.stderr
        assert "Traceback" not in result.stderr
        connection = await asyncpg.connect(asyncpg_dsn(migrated_url))
        try:
            await connection.execute("DELETE FROM users WHERE email = $1", email)
        finally:
            await connection.close()
