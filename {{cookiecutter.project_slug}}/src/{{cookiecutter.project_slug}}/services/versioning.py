"""Optimistic concurrency for versioned rows: `If-Match` is checked before a write and enforced
by it, so a change made in between cannot slip through."""

from __future__ import annotations

from collections.abc import Awaitable, Collection

from {{ cookiecutter.project_slug }}.core.errors import PreconditionFailedError, StaleVersionError


def check_version(what: str, version: int, if_match: Collection[int] | None) -> None:
    """Refuse with 412 unless `if_match` is absent or holds `version`."""
    if if_match is not None and version not in if_match:
        raise PreconditionFailedError(f"{what} is at version {version}; read it again and retry")


async def write_versioned(
    write: Awaitable[None], what: str, version: int, if_match: Collection[int] | None
) -> None:
    """Run a versioned write (`UPDATE ... WHERE version = <version read>`); when another request
    changed the row meanwhile, a conditional request gets 412 and an unconditional one 409.

    `what` and `version` are passed in, not read afterwards: a failed flush leaves the session
    unusable, the row's attributes included.
    """
    try:
        await write
    except StaleVersionError as exc:
        if if_match is None:
            raise
        raise PreconditionFailedError(
            f"{what} changed since version {version}; read it again"
        ) from exc
