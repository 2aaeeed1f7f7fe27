"""Alembic environment of the lock tests: the project's options, plus an optional pause.

`LOCK_TEST_PAUSE_AFTER=<revision>` makes the process print `paused after <revision>` and stop
after that revision ran and was checked, before it is committed: the moment between revisions.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection

from {{ cookiecutter.project_slug }}.db.migrate import context_options

PAUSE_SECONDS = 600.0


def pause_after(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    if step.up_revision_id == os.environ.get("LOCK_TEST_PAUSE_AFTER"):
        print(f"paused after {step.up_revision_id}", flush=True)  # noqa: T201
        time.sleep(PAUSE_SECONDS)


def run_migrations(connection: Connection) -> None:
    options = context_options(context.config, connection)
    options["on_version_apply"] = [options["on_version_apply"], pause_after]
    context.configure(connection=connection, target_metadata=None, **options)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    sys.exit("the lock tests' migrations run online only")
run_migrations(context.config.attributes["connection"])
