"""Settings: parsed from the environment, with unsafe production values refused together."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from {{ cookiecutter.project_slug }}.core.config import (
    EXAMPLE_SECRET_KEY,
    ConfigurationError,
    Settings,
    load_settings,
)

POSTGRES_URL = "postgresql+asyncpg://app:pw@db.internal:5432/app"
REDIS_URL = "redis://cache.internal:6379/0"
GOOD_KEY = "k" * 32
FERNET_KEY = "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXQ="
OLD_FERNET_KEY = "b2xkLWZlcm5ldC1rZXktZm9yLXRlc3RzLW9ubHktMzI="


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets is seen: no inherited variables, no `.env` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("SETTINGS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


def production_error(**overrides: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environment="production", **overrides)
    return str(caught.value)


class TestProductionRefusal:
    def test_every_offending_variable_is_named_at_once(self) -> None:
        message = production_error()
        assert "SECRET_KEY is missing" in message
        assert "DATABASE_URL must be a PostgreSQL URL" in message
{%- if cookiecutter.use_redis == 'y' %}
        assert "REDIS_URL is missing" in message
{%- else %}
        # Without Redis the stores are per process by design, not a configuration mistake.
        assert "REDIS_URL" not in message
{%- endif %}

    def test_short_secret_key_is_refused(self) -> None:
        message = production_error(
            secret_key="k" * 31, database_url=POSTGRES_URL, redis_url=REDIS_URL
        )
        assert "SECRET_KEY is shorter than 32 characters" in message
        assert "DATABASE_URL" not in message

    def test_example_secret_key_is_refused(self) -> None:
        message = production_error(
            secret_key=EXAMPLE_SECRET_KEY, database_url=POSTGRES_URL, redis_url=REDIS_URL
        )
        assert "SECRET_KEY is the example value" in message

    def test_sqlite_database_is_refused(self) -> None:
        message = production_error(
            secret_key=GOOD_KEY, database_url="sqlite+aiosqlite:///var/app.db", redis_url=REDIS_URL
        )
        assert "DATABASE_URL must be a PostgreSQL URL" in message
        assert "SECRET_KEY" not in message

    def test_secret_value_never_appears_in_the_message(self) -> None:
        message = production_error(secret_key="short-but-secret-value")
        assert "short-but-secret-value" not in message

    def test_refusal_comes_from_the_environment_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("SECRET_KEY", EXAMPLE_SECRET_KEY)
        with pytest.raises(ConfigurationError, match="SECRET_KEY is the example value"):
            load_settings()

    def test_safe_production_settings_are_accepted(self) -> None:
        settings = load_settings(
            environment="production",
            secret_key=GOOD_KEY,
            database_url="postgresql://app:pw@db.internal:5432/app",
            redis_url=REDIS_URL,
            encryption_keys=FERNET_KEY,
        )
        assert settings.is_production
        assert settings.signing_key == GOOD_KEY

    def test_development_accepts_the_embedded_defaults(self) -> None:
        settings = load_settings()
        assert settings.environment == "development"
        assert settings.is_sqlite
        # No SECRET_KEY: a random per-process key, never an empty one.
        assert len(settings.signing_key) >= 32


class TestKeys:
    def test_production_refuses_missing_encryption_keys(self) -> None:
        message = production_error(
            secret_key=GOOD_KEY, database_url=POSTGRES_URL, redis_url=REDIS_URL
        )
        assert "ENCRYPTION_KEYS is missing" in message

    def test_a_key_that_is_not_a_fernet_key_is_named(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            load_settings(encryption_keys=f"{FERNET_KEY},not-a-key")
        assert "ENCRYPTION_KEYS: key 2 is not a Fernet key" in str(caught.value)
        assert FERNET_KEY not in str(caught.value)

    def test_encryption_keys_are_kept_newest_first(self) -> None:
        settings = load_settings(encryption_keys=f" {FERNET_KEY} , {OLD_FERNET_KEY}")
        assert settings.field_encryption_keys == [FERNET_KEY.encode(), OLD_FERNET_KEY.encode()]

    def test_development_derives_a_stable_encryption_key_from_secret_key(self) -> None:
        first = load_settings(secret_key=GOOD_KEY).field_encryption_keys
        again = load_settings(secret_key=GOOD_KEY).field_encryption_keys
        other = load_settings(secret_key="o" * 32).field_encryption_keys
        assert first == again != other

    def test_production_refuses_a_short_api_key_pepper(self) -> None:
        message = production_error(api_key_pepper="p" * 31)
        assert "API_KEY_PEPPER is shorter than 32 characters" in message

    def test_the_api_key_pepper_is_derived_when_unset(self) -> None:
        derived = load_settings(secret_key=GOOD_KEY).api_key_pepper_bytes
        explicit = load_settings(secret_key=GOOD_KEY, api_key_pepper="p" * 32)
        assert derived not in (GOOD_KEY.encode(), b"")
        assert explicit.api_key_pepper_bytes == b"p" * 32


def rsa_pem(bits: int = 2048) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class TestAsymmetricKeys:
    def test_hs256_with_the_secret_key_is_the_default(self) -> None:
        settings = load_settings(secret_key=GOOD_KEY)
        assert settings.jwt_algorithm == "HS256"
        assert settings.jwt_signing_key == settings.jwt_verification_key == GOOD_KEY

    def test_a_key_pair_switches_to_rs256(self) -> None:
        private, public = rsa_pem()
        # As an environment variable often carries it: line breaks written as `\n`.
        settings = load_settings(
            jwt_private_key=private.replace("\n", "\\n"), jwt_public_key=public
        )
        assert settings.jwt_algorithm == "RS256"
        assert settings.jwt_signing_key == private
        assert settings.jwt_verification_key == public

    @pytest.mark.parametrize(
        ("which", "message"),
        [
            ("private-only", "set both JWT_PRIVATE_KEY and JWT_PUBLIC_KEY, or neither"),
            ("mismatched", "JWT_PUBLIC_KEY is not the public half of JWT_PRIVATE_KEY"),
            ("garbage", "JWT_PRIVATE_KEY is not an unencrypted PEM private key"),
            ("short", "JWT_PRIVATE_KEY must be at least 2048 bits"),
        ],
    )
    def test_a_bad_key_pair_is_refused_naming_the_problem(self, which: str, message: str) -> None:
        private, public = rsa_pem(1024 if which == "short" else 2048)
        overrides: dict[str, object] = {"jwt_private_key": private, "jwt_public_key": public}
        if which == "private-only":
            del overrides["jwt_public_key"]
        elif which == "mismatched":
            overrides["jwt_public_key"] = rsa_pem()[1]
        elif which == "garbage":
            overrides["jwt_private_key"] = "-----BEGIN PRIVATE KEY-----\nnope"
        with pytest.raises(ConfigurationError) as caught:
            load_settings(**overrides)
        assert message in str(caught.value)
        assert "PRIVATE KEY-----" not in str(caught.value)


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        "given",
        [
            "postgresql://app:pw@db:5432/app",
            "postgres://app:pw@db:5432/app",
            "postgresql+psycopg://app:pw@db:5432/app",
            "postgresql+asyncpg://app:pw@db:5432/app",
        ],
    )
    def test_postgres_urls_use_asyncpg(self, given: str) -> None:
        settings = load_settings(database_url=given, migration_database_url=given)
        assert settings.database_url == "postgresql+asyncpg://app:pw@db:5432/app"
        assert settings.migration_database_url == "postgresql+asyncpg://app:pw@db:5432/app"

    def test_sqlite_url_is_kept(self) -> None:
        settings = load_settings(database_url="sqlite+aiosqlite:///tmp/x.db")
        assert settings.database_url == "sqlite+aiosqlite:///tmp/x.db"
        assert settings.migration_database_url is None


class TestCsvLists:
    def test_cors_origins_from_comma_separated_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CORS_ORIGINS", " https://a.example.com, https://b.example.com ,")
        assert load_settings().cors_origins == ["https://a.example.com", "https://b.example.com"]

    def test_trusted_proxies_from_comma_separated_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1,10.0.0.2")
        assert load_settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]

    def test_empty_variable_means_no_entries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CORS_ORIGINS", "")
        monkeypatch.setenv("TRUSTED_PROXIES", " ")
        settings = load_settings()
        assert settings.cors_origins == []
        assert settings.trusted_proxies == []

    def test_no_proxy_is_trusted_by_default(self) -> None:
        assert load_settings().trusted_proxies == []

    def test_metrics_networks_default_to_loopback_and_private_ranges(self) -> None:
        assert load_settings().metrics_allowed_networks == [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ]

    def test_metrics_networks_from_comma_separated_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.1.0.0/16, 2001:db8::/32")
        assert load_settings().metrics_allowed_networks == ["10.1.0.0/16", "2001:db8::/32"]

    def test_a_bad_metrics_network_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,not-a-network")
        with pytest.raises(ConfigurationError, match="not-a-network"):
            load_settings()


class TestDefaults:
    def test_documented_defaults(self) -> None:
        settings = load_settings()
        assert settings.access_token_ttl_seconds == 900
        assert settings.refresh_token_ttl_seconds == 1_209_600
        assert settings.rate_limit_default == "100/minute"
        assert settings.rate_limit_auth == "10/minute"
        assert settings.rate_limit_fail_open is True
        assert settings.cors_origins == []

    def test_production_hides_docs_and_logs_json(self) -> None:
        settings = load_settings(
            environment="production",
            secret_key=GOOD_KEY,
            database_url=POSTGRES_URL,
            redis_url=REDIS_URL,
            encryption_keys=FERNET_KEY,
        )
        assert settings.show_docs is False
        assert settings.effective_log_format == "json"

    def test_development_shows_docs_and_logs_for_humans(self) -> None:
        settings = load_settings()
        assert settings.show_docs is True
        assert settings.effective_log_format == "console"

    def test_explicit_choices_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DOCS_ENABLED", "true")
        monkeypatch.setenv("LOG_FORMAT", "console")
        settings = load_settings(
            environment="production",
            secret_key=GOOD_KEY,
            database_url=POSTGRES_URL,
            redis_url=REDIS_URL,
            encryption_keys=FERNET_KEY,
        )
        assert settings.show_docs is True
        assert settings.effective_log_format == "console"

    def test_log_level_is_case_insensitive(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LOG_LEVEL", "debug")
        assert load_settings().log_level == "DEBUG"

    def test_broker_falls_back_to_redis(self) -> None:
        assert load_settings().effective_broker_url is None
        assert load_settings(redis_url=REDIS_URL).effective_broker_url == REDIS_URL
        broker = "amqp://guest:guest@mq:5672//"
        assert (
            load_settings(redis_url=REDIS_URL, celery_broker_url=broker).effective_broker_url
            == broker
        )


class TestInvalidValues:
    def test_message_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "0")
        monkeypatch.setenv("LOG_FORMAT", "xml")
        with pytest.raises(ConfigurationError) as caught:
            load_settings()
        message = str(caught.value)
        assert "ACCESS_TOKEN_TTL_SECONDS" in message
        assert "LOG_FORMAT" in message

    def test_unknown_environment_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ENVIRONMENT", "prod")
        with pytest.raises(ConfigurationError, match="ENVIRONMENT"):
            load_settings()
