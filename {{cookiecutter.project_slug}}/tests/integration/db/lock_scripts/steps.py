"""What every test revision does: optionally sleep, do its work, optionally lose the lock, audit."""

from __future__ import annotations

from collections.abc import Callable

from alembic import op
from sqlalchemy import Connection, text

AUDIT_TABLE = "lock_test_audit"
CONFIG_TABLE = "lock_test_config"
BIG_TABLE = "lock_test_big"

# The tables a test database gets before any migration runs; the migrations never touch them.
SETUP_SQL = (
    f"CREATE TABLE {AUDIT_TABLE} ("
    " version_table text NOT NULL, revision text NOT NULL, backend_pid integer NOT NULL,"
    " application_name text NOT NULL, started_at timestamptz NOT NULL,"
    " finished_at timestamptz NOT NULL, lock_timeout text NOT NULL,"
    " statement_timeout text NOT NULL)",
    f"CREATE TABLE {CONFIG_TABLE} (name text PRIMARY KEY, value double precision NOT NULL)",
    f"CREATE TABLE {BIG_TABLE} (id bigint PRIMARY KEY, value text NOT NULL)",
)


def _config(connection: Connection, name: str) -> float:
    value = connection.execute(
        text(f"SELECT value FROM {CONFIG_TABLE} WHERE name = :name"),  # noqa: S608
        {"name": name},
    ).scalar_one_or_none()
    return float(value) if value is not None else 0.0


def prefix() -> str:
    """Objects are named after the version table, so parallel histories never collide."""
    return str(op.get_context().version_table)


def audited(revision: str, work: Callable[[Connection], None]) -> None:
    """Run `work` between the configured sleep and the audit row, in the revision's transaction."""
    connection = op.get_bind()
    started = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    seconds = _config(connection, f"sleep:{revision}")
    if seconds > 0:
        connection.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
    work(connection)
    connection = op.get_bind()  # an autocommit block may have swapped the connection
    if _config(connection, f"unlock:{revision}") > 0:
        connection.execute(text("SELECT pg_advisory_unlock_all()"))
    connection.execute(
        text(
            f"INSERT INTO {AUDIT_TABLE} VALUES (:version_table, :revision, pg_backend_pid(),"  # noqa: S608
            " current_setting('application_name'), :started, clock_timestamp(),"
            " current_setting('lock_timeout'), current_setting('statement_timeout'))"
        ),
        {"version_table": prefix(), "revision": revision, "started": started},
    )
