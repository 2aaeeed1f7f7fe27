"""Alembic environment.

Migrations normally run through `{{ cookiecutter.project_slug }} db upgrade`, which hands this
module a connection that already holds the migration lock. Run through the plain `alembic`
command, it takes the same lock itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from {{ cookiecutter.project_slug }}.core.config import get_settings
from {{ cookiecutter.project_slug }}.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=context.config.get_main_option("version_table") or "alembic_version",
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=get_settings().migration_database_url or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := context.config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    from {{ cookiecutter.project_slug }}.db.migrate import run_locked

    asyncio.run(
        run_locked(get_settings(), lambda config: run_migrations(config.attributes["connection"]))
    )
