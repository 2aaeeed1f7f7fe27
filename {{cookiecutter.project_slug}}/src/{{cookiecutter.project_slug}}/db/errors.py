"""Why a migration command failed, and the exit code each reason maps to (see the README).

Scripts and deploy jobs branch on the exit code: 3 means "another migrator is still at it",
4 "the database is not there", and so on; the message says what to do.
"""

from __future__ import annotations


class MigrationError(Exception):
    """A migration command failed; `exit_code` tells scripts which way (see the README)."""

    exit_code = 1


class LockTimeoutError(MigrationError):
    exit_code = 3


class DatabaseUnreachableError(MigrationError):
    exit_code = 4


class RevisionError(MigrationError):
    exit_code = 5


class LockLostError(MigrationError):
    exit_code = 6


class PoolerDetectedError(MigrationError):
    exit_code = 7


class MigrationInterruptedError(MigrationError):
    exit_code = 8


def first_line(exc: BaseException) -> str:
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
