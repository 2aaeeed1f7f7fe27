"""Column types shared by models.

`EncryptedString` stores text encrypted with the `Encryptor` bound to the engine (see
`bind_encryptor`), so keys come from settings at run time, never at import; the composition root
binds it when it builds the engine.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from {{ cookiecutter.project_slug }}.core.encryption import Encryptor

_encryptors: WeakKeyDictionary[Dialect, Encryptor] = WeakKeyDictionary()


def bind_encryptor(engine: AsyncEngine | Engine, encryptor: Encryptor) -> None:
    """Encrypt and decrypt `EncryptedString` columns on `engine`'s connections with
    `encryptor`."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    _encryptors[sync_engine.dialect] = encryptor


def encryptor_for(dialect: Dialect) -> Encryptor:
    try:
        return _encryptors[dialect]
    except KeyError:
        raise RuntimeError(
            "no encryptor is bound to this engine; build it with `bind_encryptor` first"
        ) from None


class EncryptedString(TypeDecorator[str]):
    """Text encrypted at rest (Fernet); queries see ciphertext, so no filtering or sorting."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encryptor_for(dialect).encrypt(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        return None if value is None else encryptor_for(dialect).decrypt(str(value))
