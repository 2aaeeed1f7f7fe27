"""Field encryption with key rotation: Fernet (AES-128-CBC + HMAC-SHA256) under `MultiFernet`.

Keys come from ENCRYPTION_KEYS, newest first: new values are encrypted under the first key, and
every listed key can still decrypt. Rotating is: put a new key first, deploy, run
`db reencrypt` (which rewrites each value under the newest key), then drop the old key.
Ciphertext is randomised, so encrypted columns cannot be searched or compared in SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class EncryptionKeyError(ValueError):
    """A configured key is not a Fernet key."""


class DecryptionError(Exception):
    """A value was not encrypted under any configured key, or was altered."""


def parse_keys(value: str) -> list[bytes]:
    """Comma-separated Fernet keys (url-safe base64 of 32 bytes), newest first."""
    keys = [part.strip().encode() for part in value.split(",") if part.strip()]
    if not keys:
        raise EncryptionKeyError("no key given")
    for position, key in enumerate(keys, 1):
        try:
            valid = len(base64.urlsafe_b64decode(key)) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise EncryptionKeyError(
                f"key {position} is not a Fernet key (url-safe base64 of 32 bytes); generate "
                "one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
    return keys


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from another secret (development and tests only)."""
    digest = hmac.new(secret.encode(), b"field-encryption", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def generate_key() -> str:
    return Fernet.generate_key().decode()


class Encryptor:
    """Encrypts under the newest key; decrypts under any."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise EncryptionKeyError("at least one key is needed")
        self._newest = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._newest.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("the value cannot be decrypted with any configured key") from None

    def is_current(self, token: str) -> bool:
        """Whether `token` is already encrypted under the newest key."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """`token` re-encrypted under the newest key (its original timestamp kept)."""
        try:
            return self._all.rotate(token.encode()).decode()
        except InvalidToken:
            raise DecryptionError("the value cannot be decrypted with any configured key") from None
