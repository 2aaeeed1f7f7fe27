"""Which database failures are the client's, which an outage, which a bug: with SQLite's real
errors here (PostgreSQL's are covered by tests/integration/api/test_database_errors.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import Connection

from {{ cookiecutter.project_slug }}.core.errors import (
    ConflictError,
    ServiceUnavailableError,
    ValidationFailedError,
)
from {{ cookiecutter.project_slug }}.middleware.errors import database_error


@pytest.fixture
def connection() -> Connection:
    engine = create_engine("sqlite://")
    connection = engine.connect()
    connection.execute(text("PRAGMA foreign_keys=ON"))
    connection.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)"))
    connection.execute(
        text(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
            "owner_id INTEGER REFERENCES users (id))"
        )
    )
    return connection


def failure(connection: Connection, *statements: str) -> exc.DBAPIError:
    """The error the last of `statements` raises (the others must succeed)."""
    *setup, failing = statements
    for statement in setup:
        connection.execute(text(statement))
    with pytest.raises(exc.DBAPIError) as raised:
        connection.execute(text(failing))
    return raised.value


def test_a_unique_violation_is_a_conflict_naming_the_field(connection: Connection) -> None:
    error = database_error(
        failure(
            connection,
            "INSERT INTO users (email) VALUES ('a@example.com')",
            "INSERT INTO users (email) VALUES ('a@example.com')",
        )
    )

    assert isinstance(error, ConflictError)
    assert error.extensions["errors"][0]["field"] == "email"


def test_not_null_and_foreign_key_violations_are_validation_errors(
    connection: Connection,
) -> None:
    not_null = database_error(failure(connection, "INSERT INTO items (title) VALUES (NULL)"))
    missing_owner = database_error(
        failure(connection, "INSERT INTO items (title, owner_id) VALUES ('t', 42)")
    )

    assert isinstance(not_null, ValidationFailedError)
    assert not_null.extensions["errors"][0] == {
        "field": "title",
        "message": "is required",
        "type": "not_null",
    }
    assert isinstance(missing_owner, ValidationFailedError)
    assert missing_owner.extensions["errors"][0]["type"] == "foreign_key"


def test_a_bug_in_sql_is_not_mapped(connection: Connection) -> None:
    assert database_error(failure(connection, "SELEC 1")) is None


def test_a_locked_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    holder = create_engine(url).connect()
    holder.exec_driver_sql("BEGIN EXCLUSIVE")
    waiter = create_engine(url, connect_args={"timeout": 0}).connect()
    try:
        error = database_error(failure(waiter, "CREATE TABLE t (x INTEGER)"))
    finally:
        waiter.close()
        holder.close()

    assert isinstance(error, ServiceUnavailableError)


def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as raised:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    error = database_error(raised.value)

    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after >= 1


def test_other_exceptions_are_not_database_errors() -> None:
    assert database_error(ValueError("x")) is None
