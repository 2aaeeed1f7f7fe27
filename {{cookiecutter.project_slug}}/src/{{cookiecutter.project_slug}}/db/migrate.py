"""Alembic commands, run under the migration lock (see `db.lock`); failures in `db.errors`.

The current revision is read only once the lock is held, so a process that waited finds the
database at head and applies nothing. Before each revision is recorded the session checks it still
holds the lock, and aborts (rolling the revision back) if it does not.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.db.errors import (
    DatabaseUnreachableError,
    LockLostError,
    LockTimeoutError,
    MigrationError,
    MigrationInterruptedError,
    PoolerDetectedError,
    RevisionError,
    first_line,
)
from {{ cookiecutter.project_slug }}.db.lock import advisory_lock, file_lock, holds_lock, lock_key

__all__ = [
    "DatabaseUnreachableError",
    "LockLostError",
    "LockTimeoutError",
    "MigrationError",
    "MigrationInterruptedError",
    "PoolerDetectedError",
    "RevisionError",
    "lock_key",
]

log = get_logger(__name__)

SCRIPT_LOCATION = "{{ cookiecutter.project_slug }}:db/migrations"
VERSION_TABLE = "alembic_version"
SCHEMA = "public"
LOCK_NAMESPACE = "{{ cookiecutter.project_slug }}"

_handling_signals: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "migration_signal_handlers", default=False
)


def lock_name(url: str, *, version_table: str = VERSION_TABLE, schema: str = SCHEMA) -> str:
    """`<slug>:<database>:<schema>.<version_table>`: one lock per migration history."""
    return f"{LOCK_NAMESPACE}:{make_url(url).database}:{schema}.{version_table}"


def alembic_config(
    connection: Connection | None = None,
    *,
    script_location: str = SCRIPT_LOCATION,
    version_table: str = VERSION_TABLE,
) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("version_table", version_table)
    # New files are named after their id alone: `0003_add_x.py` (see next_revision_id).
    config.set_main_option("file_template", "%%(rev)s")
    configure_formatting(config)
    config.attributes["connection"] = connection
    return config


def configure_formatting(config: Config) -> None:
    """Run ruff on every revision Alembic writes, so `make lint` stays clean after `db revision`.

    Ruff is a development tool: where it is not installed (a production image) nothing is run.
    """
    beside_python = Path(sys.executable).with_name("ruff")
    ruff = str(beside_python) if beside_python.is_file() else shutil.which("ruff")
    if ruff is None:
        return
    hooks = {
        # Fix first (unused imports of an empty revision, import order), then format.
        "ruff_fix": "check --fix --quiet REVISION_SCRIPT_FILENAME",
        "ruff_format": "format --quiet REVISION_SCRIPT_FILENAME",
    }
    config.set_section_option("post_write_hooks", "hooks", ", ".join(hooks))
    for name, options in hooks.items():
        config.set_section_option("post_write_hooks", f"{name}.type", "exec")
        # Config values are interpolated: a `%` in the path must be doubled.
        config.set_section_option("post_write_hooks", f"{name}.executable", ruff.replace("%", "%%"))
        config.set_section_option("post_write_hooks", f"{name}.options", options)


# The shipped revisions are numbered (`0001_users`); new ones continue the sequence.
NUMBERED_REVISION = re.compile(r"(\d{4})_")
SLUG_LENGTH = 40


def next_revision_id(script: ScriptDirectory, message: str) -> str:
    """`0003_add_x_column` for "Add x column" after `0002_…`: sequential, readable, unique."""
    numbers = [
        int(match[1])
        for script_revision in script.walk_revisions()
        if (match := NUMBERED_REVISION.match(script_revision.revision))
    ]
    words = re.sub(r"[^a-z0-9]+", "_", message.lower())[:SLUG_LENGTH].strip("_")
    return f"{max(numbers, default=0) + 1:04d}_{words or 'revision'}"


def write_revision(config: Config, message: str, *, autogenerate: bool) -> None:
    rev_id = next_revision_id(ScriptDirectory.from_config(config), message)
    command.revision(config, message=message, autogenerate=autogenerate, rev_id=rev_id)


def context_options(config: Config, connection: Connection) -> dict[str, Any]:
    """Options for `context.configure` that every env.py of this project needs."""
    key: int | None = config.attributes.get("lock_key")

    def check_lock(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],  # noqa: ARG001 - Alembic passes all four by name
        run_args: Mapping[str, Any],  # noqa: ARG001
    ) -> None:
        # Runs before the step's transaction commits: a lost lock rolls the revision back.
        if key is not None and not holds_lock(ctx.connection or connection, key):
            raise LockLostError(
                f"migration lock lost during {step.up_revision_id}; the revision was rolled "
                "back; check the state with `db current` and retry"
            )

    return {
        "version_table": config.get_main_option("version_table") or VERSION_TABLE,
        "compare_type": True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        "render_as_batch": connection.dialect.name == "sqlite",
        "transaction_per_migration": config.attributes.get("transaction_per_migration", False),
        "on_version_apply": check_lock,
    }


@contextmanager
def _signals_cancel(task: asyncio.Task[Any]) -> Iterator[None]:
    """SIGTERM and SIGINT cancel the migration: the revision rolls back and the lock is freed.

    Only the outermost call installs handlers, so a nested call cannot remove them on its way out.
    """
    if _handling_signals.get():
        yield
        return
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, task.cancel)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or not a Unix loop: leave signals alone
        installed.append(signum)
    token = _handling_signals.set(bool(installed))
    try:
        yield
    finally:
        _handling_signals.reset(token)
        for signum in installed:
            loop.remove_signal_handler(signum)


@asynccontextmanager
async def _locked_connection(
    settings: Settings, *, version_table: str, wait_seconds: float
) -> AsyncIterator[tuple[AsyncConnection, int | None]]:
    url = settings.migration_database_url or settings.database_url
    if url.startswith("sqlite"):
        async with file_lock(url, wait_seconds=wait_seconds) as connection:
            yield connection, None
        return
    name = lock_name(url, version_table=version_table)
    key = lock_key(name)
    async with advisory_lock(
        url,
        key=key,
        name=name,
        wait_seconds=wait_seconds,
        application_name=f"{LOCK_NAMESPACE}-migrator:{socket.gethostname()}:{os.getpid()}",
        enabled=settings.migration_lock,
    ) as connection:
        await _apply_migration_timeouts(connection, settings)
        yield connection, key if settings.migration_lock else None


async def _apply_migration_timeouts(connection: AsyncConnection, settings: Settings) -> None:
    # Applied per run on the migration session only; unset means the role's own defaults.
    timeouts = {
        "statement_timeout": settings.migration_statement_timeout_seconds,
        "lock_timeout": settings.migration_ddl_lock_timeout_seconds,
    }
    for name, seconds in timeouts.items():
        if seconds is not None:
            await connection.execute(
                text("SELECT set_config(:name, :value, false)"),
                {"name": name, "value": f"{int(seconds * 1000)}ms"},
            )
    await connection.commit()


async def run_locked(
    settings: Settings,
    action: Callable[[Config], object],
    *,
    lock_timeout: float | None = None,
    script_location: str = SCRIPT_LOCATION,
    version_table: str = VERSION_TABLE,
    transaction_per_migration: bool = False,
) -> None:
    """Run an Alembic command on a connection that holds the migration lock."""
    wait_seconds = (
        lock_timeout if lock_timeout is not None else settings.migration_lock_timeout_seconds
    )

    async def run() -> None:
        async with _locked_connection(
            settings, version_table=version_table, wait_seconds=wait_seconds
        ) as (connection, key):

            def alembic(sync_connection: Connection) -> None:
                config = alembic_config(
                    sync_connection, script_location=script_location, version_table=version_table
                )
                config.attributes["lock_key"] = key
                config.attributes["transaction_per_migration"] = transaction_per_migration
                try:
                    action(config)
                except CommandError as exc:
                    raise RevisionError(f"{exc}; list revisions with `db history`") from exc

            try:
                await connection.run_sync(alembic)
                await connection.commit()
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise LockLostError(
                        f"the migration connection was lost ({first_line(exc)}); the running "
                        "revision was rolled back; check the state with `db current` and retry"
                    ) from exc
                raise MigrationError(
                    f"migration failed and was rolled back: {first_line(exc)}"
                ) from exc

    task = asyncio.ensure_future(run())
    with _signals_cancel(task):
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled, not just the migration
            raise MigrationInterruptedError(
                "interrupted by a signal; the running revision was rolled back and the lock "
                "released"
            ) from None


async def upgrade(
    settings: Settings,
    revision: str = "head",
    *,
    lock_timeout: float | None = None,
    script_location: str = SCRIPT_LOCATION,
    version_table: str = VERSION_TABLE,
    transaction_per_migration: bool = False,
) -> None:
    def apply(config: Config) -> None:
        _log_if_nothing_to_apply(config, revision)
        command.upgrade(config, revision)

    await run_locked(
        settings,
        apply,
        lock_timeout=lock_timeout,
        script_location=script_location,
        version_table=version_table,
        transaction_per_migration=transaction_per_migration,
    )


async def downgrade(
    settings: Settings, revision: str, *, lock_timeout: float | None = None
) -> None:
    await run_locked(
        settings, lambda config: command.downgrade(config, revision), lock_timeout=lock_timeout
    )


async def current(settings: Settings) -> None:
    await run_locked(settings, lambda config: command.current(config, verbose=False))


async def history(settings: Settings) -> None:
    await run_locked(settings, lambda config: command.history(config))


async def revision(settings: Settings, message: str, *, autogenerate: bool) -> None:
    await run_locked(
        settings, lambda config: write_revision(config, message, autogenerate=autogenerate)
    )


def _log_if_nothing_to_apply(config: Config, revision: str) -> None:
    # Read only now, under the lock: a migrator that waited sees what the winner applied.
    connection: Connection = config.attributes["connection"]
    version_table = config.get_main_option("version_table") or VERSION_TABLE
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    current = set(context.get_current_heads())
    # End the read's transaction: Alembic must begin its own (autocommit blocks depend on it).
    connection.rollback()
    script = ScriptDirectory.from_config(config)
    target = set(script.get_heads()) if revision == "head" else None
    if current and current == target:
        log.info("database already at head; nothing to apply", revision=", ".join(sorted(current)))


def upgrade_sql(revision: str = "head") -> None:
    """Print the SQL of an upgrade (offline mode): no connection, so no lock is needed."""
    try:
        command.upgrade(alembic_config(), revision, sql=True)
    except CommandError as exc:
        raise RevisionError(f"{exc}; list revisions with `db history`") from exc


def code_heads() -> frozenset[str]:
    """The head revisions the installed code expects (read from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def database_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at; empty when it was never migrated."""
    has_table = await connection.run_sync(lambda sync: sync.dialect.has_table(sync, VERSION_TABLE))
    if not has_table:
        return frozenset()
    rows = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
    return frozenset(row[0] for row in rows)
