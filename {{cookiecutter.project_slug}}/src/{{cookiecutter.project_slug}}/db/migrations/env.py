"""Alembic environment.

Migrations normally run through `{{ cookiecutter.project_slug }} db upgrade`, which hands this
module a connection that already holds the migration lock. Run through the plain `alembic`
command, it takes the same lock itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from alembic.config import Config
from sqlalchemy import Connection

from {{ cookiecutter.project_slug }}.core.config import get_settings
from {{ cookiecutter.project_slug }}.db.migrate import context_options, run_locked
from {{ cookiecutter.project_slug }}.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        **context_options(context.config, connection),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    settings = get_settings()
    context.configure(
        url=settings.migration_database_url or settings.database_url,
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

    def run_under_lock(config: Config) -> None:
        context.config.attributes["lock_key"] = config.attributes["lock_key"]
        run_migrations(config.attributes["connection"])

    asyncio.run(run_locked(get_settings(), run_under_lock))
