"""Settings from a TOML file named by SETTINGS_FILE, below the environment and `.env`.

The file is checked on its own before it is merged, so a mistake is reported against the file:
its path, the key and the reason. Unknown keys are refused (a typo would otherwise be silently
ignored), and so are secrets when the service runs in production: they belong in the
environment or a secrets store, not in a file that is easily committed or baked into an image.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

SETTINGS_FILE_VARIABLE = "SETTINGS_FILE"
# Keys that are secret whatever their value; URLs are secret when they carry a password.
SECRET_KEYS = frozenset({"secret_key", "api_key_pepper", "encryption_keys", "jwt_private_key"})


# Set while the file's values are validated alone: no other source, no whole-configuration checks.
_checking_file: ContextVar[bool] = ContextVar("checking_settings_file", default=False)


def checking_file() -> bool:
    return _checking_file.get()


@contextmanager
def file_values_only() -> Iterator[None]:
    token = _checking_file.set(True)
    try:
        yield
    finally:
        _checking_file.reset(token)


class SettingsFileError(ValueError):
    """The settings file cannot be used; each problem names the file, a key and the reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def is_secret(key: str, value: object) -> bool:
    if key in SECRET_KEYS:
        return True
    return isinstance(value, str) and "://" in value and bool(urlsplit(value).password)


def _environment(
    sources: Iterable[PydanticBaseSettingsSource], file_data: dict[str, Any]
) -> object:
    """The environment the service will run in: the first source above the file that sets it."""
    for source in sources:
        value = source().get("environment")
        if value is not None:
            return value
    return file_data.get("environment")


class SettingsFileSource(TomlConfigSettingsSource):
    """A `TomlConfigSettingsSource` that refuses what the model would not accept from the file."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        path: Path,
        above: Iterable[PydanticBaseSettingsSource],
        default_environment: str,
    ) -> None:
        if not path.is_file():
            raise SettingsFileError([f"{path}: no such file ({SETTINGS_FILE_VARIABLE}={path})"])
        try:
            super().__init__(settings_cls, toml_file=path)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsFileError([f"{path}: not valid TOML: {exc}"]) from None
        environment = _environment(above, self.toml_data) or default_environment
        problems = self._problems(settings_cls, path, production=environment == "production")
        if problems:
            raise SettingsFileError(problems)

    def _problems(
        self, settings_cls: type[BaseSettings], path: Path, production: bool
    ) -> list[str]:
        fields = settings_cls.model_fields
        problems: list[str] = []
        for key, value in self.toml_data.items():
            if key not in fields:
                close = difflib.get_close_matches(key.lower(), list(fields), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{path}: {key}: unknown setting{hint}")
            elif production and is_secret(key, value):
                problems.append(
                    f"{path}: {key}: secrets are refused in a settings file in production; "
                    f"set {key.upper()} in the environment or a secrets store"
                )
        known = {key: value for key, value in self.toml_data.items() if key in fields}
        try:
            with file_values_only():
                settings_cls(**known)
        except ValidationError as exc:
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "settings"
                reason = error["msg"].removeprefix("Value error, ")
                problems.append(f"{path}: {key}: {reason}")
        return problems
