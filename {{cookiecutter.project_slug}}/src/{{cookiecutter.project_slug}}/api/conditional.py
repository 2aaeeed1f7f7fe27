"""Conditional requests (RFC 9110 §13): entity tags from a version counter.

`ETag` is the version as a strong tag (`"3"`). `If-None-Match` on a read answers 304 when the
client's copy is current (weak comparison); `If-Match` on a write lets it happen only at one of
the given versions (strong comparison), which the service enforces atomically.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

IfMatch = Annotated[
    str | None,
    Header(
        description="Write only if the resource is still at this `ETag`; 412 otherwise. "
        "Without it the write is unconditional."
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(description="An `ETag` the client holds; 304 with no body when it is current."),
]

NOT_MODIFIED_RESPONSE: dict[int | str, dict[str, Any]] = {
    304: {"description": "Unchanged since the given `ETag`"}
}


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _version(tag: str) -> int | None:
    opaque = tag.removeprefix("W/")
    if len(opaque) < 3 or not (opaque.startswith('"') and opaque.endswith('"')):
        return None
    digits = opaque[1:-1]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None


def required_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` allows; `None` means unconditional (no header, or `*`).

    Weak tags never match (strong comparison), and a header with no usable tag allows no
    version at all, so the write answers 412 rather than going ahead.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    versions = (_version(tag) for tag in _tags(if_match) if not tag.startswith("W/"))
    return frozenset(version for version in versions if version is not None)


def not_modified(if_none_match: str | None, version: int) -> bool:
    """Whether a read with this `If-None-Match` should answer 304."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(_version(tag) == version for tag in _tags(if_none_match))
