"""Opaque, signed pagination cursors.

A cursor carries the sort and the sort values of the last row a client has seen. It is signed
with a key derived from `SECRET_KEY` and bound to the resource it was issued for, so a cursor
that was edited, comes from another resource or another deployment, or is not a cursor at all
is refused as `InvalidCursorError` (400) instead of paging from a position the server never gave
out. Written on the standard library: HMAC-SHA256 over compact JSON is all it takes, and
`hmac.compare_digest` keeps the check constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

from {{ cookiecutter.project_slug }}.core.errors import InvalidCursorError

# Long enough that forging one by chance is hopeless, short enough to keep URLs tidy.
_MAC_BYTES = 16
# Cursors are short; refusing long input early bounds the work an attacker can ask for.
MAX_CURSOR_LENGTH = 1024


class CursorCodec:
    def __init__(self, secret: str) -> None:
        # A key of its own: a cursor's MAC can never double as any other signature of SECRET_KEY.
        self._key = hmac.new(secret.encode(), b"pagination-cursor", hashlib.sha256).digest()

    def _mac(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode() + b"\0" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, payload: Mapping[str, object]) -> str:
        """A URL-safe token for `payload`, valid only when decoded for the same `scope`."""
        body = orjson.dumps(payload)
        token = base64.urlsafe_b64encode(self._mac(scope, body) + body)
        return token.rstrip(b"=").decode("ascii")

    def decode(self, scope: str, token: str) -> dict[str, Any]:
        """The payload of a cursor this service issued for `scope`; `InvalidCursorError` if not."""
        if len(token) > MAX_CURSOR_LENGTH or not token.isascii():
            raise InvalidCursorError("the cursor is not one this service issued")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursorError("the cursor is not one this service issued") from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(scope, body)):
            raise InvalidCursorError("the cursor is not one this service issued")
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise InvalidCursorError("the cursor is not one this service issued")
        return payload
