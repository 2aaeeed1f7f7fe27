"""Settings read from the environment, `.env`, and an optional TOML file (SETTINGS_FILE).

Every variable is validated once at start-up; unsafe production values are refused together,
so an operator fixes them in one pass instead of one restart per mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from {{ cookiecutter.project_slug }}.core.client_ip import parse_networks
from {{ cookiecutter.project_slug }}.core.encryption import (
    EncryptionKeyError,
    derive_key,
    parse_keys,
)
from {{ cookiecutter.project_slug }}.core.jwt_keys import (
    ALGORITHM,
    ASYMMETRIC_ALGORITHM,
    check_rsa_key_pair,
)
from {{ cookiecutter.project_slug }}.core.rate_limit import RuleSpecError, parse_rules
from {{ cookiecutter.project_slug }}.core.settings_file import (
    SETTINGS_FILE_VARIABLE,
    SettingsFileError,
    SettingsFileSource,
    checking_file,
)

Environment = Literal["development", "test", "production"]

# Shipped in `.env.example`; refusing it in production catches a copied example file.
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string-of-64-characters-or-more-please"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
SQLITE_DEFAULT_URL = "sqlite+aiosqlite:///var/{{ cookiecutter.project_slug }}.db"


class ConfigurationError(Exception):
    """The environment cannot produce valid settings; the message names each variable."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Service configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Runtime
    environment: Environment = "development"
    """Selects safe defaults: `production` turns on strict validation, JSON logs and HSTS."""
    project_name: str = "{{ cookiecutter.project_name }}"
    """Shown in the API docs and log lines."""
    docs_enabled: bool | None = None
    """Serve /docs and /openapi.json; on by default outside production."""
    problem_type_base_url: str = "/problems/"
    """Prefix of the `type` URI of every problem response; the service serves /problems/<code>."""

    # Storage and brokers
    database_url: str = SQLITE_DEFAULT_URL
    """SQLAlchemy URL; `postgresql://` is rewritten to the asyncpg driver."""
    migration_database_url: str | None = None
    """Direct (non-pooled) database URL for migrations, when DATABASE_URL goes through PgBouncer."""
    database_pool_size: int = Field(default=10, ge=1)
    """Connections kept open per process."""
    redis_url: str | None = None
    """Shared store for rate limits, cache and token revocation; in-process stores when unset."""
    redis_key_prefix: str = Field(default="{{ cookiecutter.project_slug }}:", min_length=1)
    """Starts every key the service writes to Redis; environments sharing a Redis need their own."""
    celery_broker_url: str | None = None
    """Celery broker; tasks run eagerly in-process when neither this nor REDIS_URL is set."""
    celery_queue: str = Field(default="{{ cookiecutter.project_slug }}", min_length=1)
    """Queue for this service's tasks; services sharing a broker must not share a queue."""
    celery_task_soft_time_limit_seconds: int = Field(default=240, gt=0)
    """A task running longer gets `SoftTimeLimitExceeded` raised inside it, to clean up."""
    celery_task_time_limit_seconds: int = Field(default=300, gt=0)
    """A task running longer has its worker process killed (and the task redelivered)."""
    celery_visibility_timeout_seconds: int = Field(default=3600, gt=0)
    """Redis broker: an unacknowledged task is given to another worker after this long."""
    celery_result_expires_seconds: int = Field(default=86_400, gt=0)
    """How long task results (for tasks that keep one) are stored."""
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Port on which each Celery worker serves Prometheus metrics; off when unset."""

    # Events
    outbox_relay_interval_seconds: float = Field(default=5.0, gt=0)
    """How often the outbox relay looks for due events besides the kick after each commit."""
    outbox_batch_size: int = Field(default=100, ge=1)
    """Events one relay run locks and delivers at a time."""
    outbox_max_attempts: int = Field(default=10, ge=1)
    """Failed deliveries of an event before it is dead-lettered."""
    outbox_retry_base_seconds: float = Field(default=2.0, gt=0)
    """Wait after the first failed delivery; it doubles with each further failure (jittered)."""
    outbox_retry_max_seconds: float = Field(default=600.0, gt=0)
    """Longest wait between two deliveries of a failing event."""
    outbox_retention_seconds: int = Field(default=7 * 86_400, gt=0)
    """Delivered events are deleted after this long (dead-lettered ones are kept)."""

    # Cache
    cache_backend: Literal["auto", "redis", "memory", "none"] = "auto"
    """`auto`: Redis when REDIS_URL is set, else in-process unless workers write too (then
    none); `memory` forces the per-process cache; `none` turns caching off."""
    cache_ttl_seconds: int = Field(default=300, gt=0)
    """How long a cached value lives unless invalidated sooner."""
    cache_max_entries: int = Field(default=10_000, ge=1)
    """Bound of the in-process cache; the least recently used entries go first."""

    # Outbound HTTP
    upstream_url: str | None = None
    """Base URL of the example upstream integration (GET /status); unset, it is not called."""
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    """Connect, read and write timeout of each outbound HTTP attempt."""
    http_retries: int = Field(default=2, ge=0)
    """Retries of an idempotent outbound request after a transient failure."""
    circuit_failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failed outbound attempts that open an upstream's circuit."""
    circuit_reset_seconds: float = Field(default=30.0, gt=0)
    """How long an open circuit refuses calls before one probe may try again."""

    # Security
    secret_key: SecretStr | None = None
    """Signs tokens. Required in production; a random per-process key is used in development."""
    jwt_private_key: SecretStr | None = None
    """PEM RSA private key: tokens are then signed RS256 instead of HS256 with SECRET_KEY."""
    jwt_public_key: str | None = None
    """PEM public half of JWT_PRIVATE_KEY; services elsewhere verify tokens with it alone."""
    api_key_pepper: SecretStr | None = None
    """Keys the hash of API key secrets; derived from SECRET_KEY when unset. Changing it (or,
    when unset, SECRET_KEY) invalidates every API key."""
    encryption_keys: SecretStr | None = None
    """Comma-separated Fernet keys for encrypted columns, newest first. Required in production;
    elsewhere a key derived from SECRET_KEY is used when unset."""
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    """Lifetime of an access token."""
    refresh_token_ttl_seconds: int = Field(default=1_209_600, gt=0)
    """Lifetime of a refresh token."""
    auth_cookie_mode: bool = False
    """Browser mode: the refresh token travels in an HttpOnly cookie, and refresh and logout
    need the CSRF cookie's value in an X-CSRF-Token header."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed logins for one account within the window before further attempts get 429."""
    login_max_failures_per_client: int = Field(default=5, ge=1)
    """Failed logins from one client address within the window before it gets 429."""
    login_failure_window_seconds: int = Field(default=900, gt=0)
    """How long failed logins are counted, from the first."""
    idempotency_key_ttl_seconds: int = Field(default=86_400, gt=0)
    """How long a POST's `Idempotency-Key` and its stored response are kept."""
    cors_origins: Annotated[list[str], NoDecode] = []
    """Comma-separated origins allowed to call the API from a browser."""
    trusted_proxies: Annotated[list[str], NoDecode] = []
    """Comma-separated proxy addresses or networks (CIDR) whose X-Forwarded-For is believed."""
    metrics_allowed_networks: Annotated[list[str], NoDecode] = [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    """Comma-separated networks (CIDR) allowed to read /metrics; anyone else gets 403."""

    # Traffic
    rate_limit_default: str = "100/minute"
    """Per-client limit on each route that is not exempt; `;` joins rules (`10/second;500/hour`)."""
    rate_limit_auth: str = "10/minute"
    """Stricter per-client limit on /api/v1/auth/*, in the same format."""
    rate_limit_fail_open: bool = True
    """Admit requests when the rate-limit store is down (logged and counted) instead of 503."""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """Requests running longer are cancelled with 503."""
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    """Larger request bodies are refused with 413."""
    shutdown_timeout_seconds: int = Field(default=20, gt=0)
    """After SIGTERM, how long open requests may finish before the server closes them."""
    feature_flag_cache_ttl_seconds: float = Field(default=10.0, ge=0)
    """How long a process reuses the flags it read; another process sees a change within this."""

    # Operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Minimum level written to the log."""
    log_format: Literal["json", "console"] | None = None
    """`json` (default in production) or `console` (default elsewhere)."""
    migration_lock_timeout_seconds: float = Field(default=300.0, gt=0)
    """How long `db upgrade` waits for another migrator before giving up."""
    migration_lock: bool = True
    """`off` runs migrations without the lock (logged); only for databases nobody else migrates."""
    migration_statement_timeout_seconds: float | None = Field(default=None, gt=0)
    """statement_timeout for migrations; unset keeps the database role's setting."""
    migration_ddl_lock_timeout_seconds: float | None = Field(default=None, gt=0)
    """lock_timeout for migrations, so DDL waiting on a busy table fails instead of queueing."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, environment, `.env`, then the SETTINGS_FILE file, if named."""
        if checking_file():  # the file's values, passed as arguments, and nothing else
            return (init_settings,)
        path = os.environ.get(SETTINGS_FILE_VARIABLE)
        if not path:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        above = (init_settings, env_settings, dotenv_settings)
        default = cls.model_fields["environment"].default
        settings_file = SettingsFileSource(settings_cls, Path(path), above, default)
        return init_settings, env_settings, dotenv_settings, settings_file, file_secret_settings

    @field_validator("cors_origins", "trusted_proxies", "metrics_allowed_networks", mode="before")
    @classmethod
    def _parse_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        # Credentials are allowed, and browsers refuse `*` with credentials; list the origins.
        if "*" in value:
            raise ValueError("'*' is not allowed (credentials are on); list each origin")
        return value

    @field_validator("trusted_proxies", "metrics_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @field_validator("rate_limit_default", "rate_limit_auth")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rules(value)
        except RuleSpecError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_keys(value.get_secret_value())
            except EncryptionKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        # Operators paste libpq-style URLs; the service always talks to PostgreSQL through asyncpg.
        if value is not None:
            for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
                if value.startswith(prefix):
                    return "postgresql+asyncpg://" + value.removeprefix(prefix)
        return value

    @field_validator("jwt_private_key", "jwt_public_key", mode="before")
    @classmethod
    def _pem_newlines(cls, value: object) -> object:
        # Environment variables often carry PEM with its line breaks written as `\n`.
        return value.replace("\\n", "\n") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _rsa_key_pair(self) -> Settings:
        if checking_file():
            return self
        private = self.jwt_private_key.get_secret_value() if self.jwt_private_key else None
        if (private is None) != (self.jwt_public_key is None):
            raise ValueError("set both JWT_PRIVATE_KEY and JWT_PUBLIC_KEY, or neither")
        if private is not None and self.jwt_public_key is not None:
            check_rsa_key_pair(private, self.jwt_public_key)
        return self

    @model_validator(mode="after")
    def _cache_backend_available(self) -> Settings:
        if self.cache_backend == "redis" and not self.redis_url:
            raise ValueError("CACHE_BACKEND=redis needs REDIS_URL")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        # A settings file is first checked alone; the whole configuration is checked afterwards.
        if self.environment != "production" or checking_file():
            return self
        problems: list[str] = []
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if not key:
            problems.append("SECRET_KEY is missing")
        elif key == EXAMPLE_SECRET_KEY:
            problems.append("SECRET_KEY is the example value from .env.example")
        elif len(key) < MIN_SECRET_KEY_LENGTH:
            problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters")
        pepper = self.api_key_pepper.get_secret_value() if self.api_key_pepper else None
        if pepper is not None and len(pepper) < MIN_SECRET_KEY_LENGTH:
            problems.append(f"API_KEY_PEPPER is shorter than {MIN_SECRET_KEY_LENGTH} characters")
        if self.encryption_keys is None:
            problems.append("ENCRYPTION_KEYS is missing: encrypted columns need a key of their own")
        if not self.database_url.startswith("postgresql+asyncpg://"):
            problems.append("DATABASE_URL must be a PostgreSQL URL in production")
        if not self.redis_url:
            problems.append(
                "REDIS_URL is missing: rate limits, cache and revocations would be per process"
            )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def show_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "console"

    @property
    def effective_broker_url(self) -> str | None:
        """The Celery broker, falling back to Redis; `None` means tasks run eagerly."""
        return self.celery_broker_url or self.redis_url

    @property
    def signing_key(self) -> str:
        return self.secret_key.get_secret_value() if self.secret_key else _EPHEMERAL_KEY

    @property
    def jwt_algorithm(self) -> str:
        return ASYMMETRIC_ALGORITHM if self.jwt_private_key is not None else ALGORITHM

    @property
    def jwt_signing_key(self) -> str:
        """The key tokens are signed with: the RSA private key, or SECRET_KEY."""
        if self.jwt_private_key is not None:
            return self.jwt_private_key.get_secret_value()
        return self.signing_key

    @property
    def jwt_verification_key(self) -> str:
        """The key tokens are verified with: the RSA public key, or SECRET_KEY."""
        return self.jwt_public_key if self.jwt_public_key is not None else self.signing_key

    @property
    def field_encryption_keys(self) -> list[bytes]:
        """The Fernet keys, newest first."""
        if self.encryption_keys is not None:
            return parse_keys(self.encryption_keys.get_secret_value())
        # Development and tests: stable as long as SECRET_KEY is (the generated .env sets one).
        return [derive_key(self.signing_key)]

    @property
    def api_key_pepper_bytes(self) -> bytes:
        if self.api_key_pepper is not None:
            return self.api_key_pepper.get_secret_value().encode()
        # A key of its own, derived so that an API key hash never equals a token signature.
        return hmac.new(self.signing_key.encode(), b"api-key-pepper", hashlib.sha256).digest()


# Development without SECRET_KEY still works; tokens simply do not survive a restart.
_EPHEMERAL_KEY = secrets.token_urlsafe(48)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    except SettingsFileError as exc:
        lines = ["invalid settings file:", *(f"  {problem}" for problem in exc.problems)]
        raise ConfigurationError("\n".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings; tests build their own with `load_settings(...)` instead."""
    return load_settings()


def _describe(exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        variable = "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable or 'settings'}: {message}")
    return "\n".join(lines)
