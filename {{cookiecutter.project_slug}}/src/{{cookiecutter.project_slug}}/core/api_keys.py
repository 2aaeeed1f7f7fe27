"""API key format, generation and verification; framework-free, used by the middleware and the
API key service.

A key reads `{prefix}_{key_id}.{secret}`. The secret is 32 random bytes and is stored only as an
HMAC-SHA256 under a server-side pepper, so a copy of the database alone cannot check guesses.
The key id is public (it names the row and the rate-limit bucket) and ends in a short HMAC tag
of itself: the auth middleware can tell an id this service issued from an invented one without a
database round trip, so a client cannot dodge its rate limit by sending made-up keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "{{ cookiecutter.project_slug.split('_') | select | map('first') | join | lower }}k"
"""Makes the service's keys recognisable, to people and to secret scanners."""
_ID_RANDOM_BYTES = 8
_ID_TAG_CHARS = 16
KEY_ID_LENGTH = _ID_RANDOM_BYTES * 2 + _ID_TAG_CHARS
_SECRET_BYTES = 32
# Longer values are not keys this service issued; refusing them bounds the work per request.
MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """A key split into its parts; the secret is not yet checked."""

    key_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    """The full key, shown to its owner once and never stored."""
    key_id: str
    secret_hash: str


def _mac(pepper: bytes, label: bytes, value: str) -> str:
    return hmac.new(pepper, label + value.encode(), hashlib.sha256).hexdigest()


def _id_tag(random_part: str, pepper: bytes) -> str:
    return _mac(pepper, b"key-id:", random_part)[:_ID_TAG_CHARS]


def hash_secret(secret: str, pepper: bytes) -> str:
    return _mac(pepper, b"secret:", secret)


def generate(pepper: bytes) -> NewKey:
    random_part = secrets.token_hex(_ID_RANDOM_BYTES)
    key_id = random_part + _id_tag(random_part, pepper)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return NewKey(f"{PREFIX}_{key_id}.{secret}", key_id, hash_secret(secret, pepper))


def looks_like_key(value: str) -> bool:
    """Whether a bearer credential is meant as an API key rather than a JWT."""
    return value.startswith(PREFIX + "_")


def parse(value: str, pepper: bytes) -> PresentedKey | None:
    """The parts of a well-formed key whose id this service issued; `None` otherwise."""
    if len(value) > MAX_KEY_LENGTH or not looks_like_key(value):
        return None
    key_id, dot, secret = value.removeprefix(PREFIX + "_").partition(".")
    if not dot or not secret or len(key_id) != KEY_ID_LENGTH:
        return None
    random_part, tag = key_id[:-_ID_TAG_CHARS], key_id[-_ID_TAG_CHARS:]
    if not hmac.compare_digest(tag, _id_tag(random_part, pepper)):
        return None
    return PresentedKey(key_id, secret)


def secret_matches(presented: PresentedKey, secret_hash: str, pepper: bytes) -> bool:
    """Constant-time comparison of the presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(presented.secret, pepper), secret_hash)
