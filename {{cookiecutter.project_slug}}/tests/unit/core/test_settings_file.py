"""Settings from SETTINGS_FILE: below the environment and `.env`, checked against the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.core.config import ConfigurationError, Settings, load_settings

GOOD_KEY = "k" * 32
POSTGRES_URL = "postgresql+asyncpg://app:pw@db.internal:5432/app"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets is seen: no inherited variables, no `.env` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("SETTINGS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "config" / "settings.toml"
    path.parent.mkdir()
    monkeypatch.setenv("SETTINGS_FILE", str(path))
    return path


def refusal(settings_file: Path, content: str) -> str:
    settings_file.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return str(caught.value)


def test_values_come_from_the_file(settings_file: Path) -> None:
    settings_file.write_text(
        'log_level = "WARNING"\nmax_body_bytes = 2048\ncors_origins = ["https://a.example"]\n'
    )
    settings = load_settings()
    assert settings.log_level == "WARNING"
    assert settings.max_body_bytes == 2048
    assert settings.cors_origins == ["https://a.example"]


def test_without_settings_file_no_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('log_level = "WARNING"\n')
    assert load_settings().log_level == "INFO"


def test_the_environment_wins_over_the_file(
    settings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file.write_text('log_level = "WARNING"\nmax_body_bytes = 2048\n')
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.log_level == "ERROR"
    assert settings.max_body_bytes == 2048


def test_dotenv_wins_over_the_file(settings_file: Path, tmp_path: Path) -> None:
    settings_file.write_text('log_level = "WARNING"\n')
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\n")
    assert load_settings().log_level == "DEBUG"


def test_an_unknown_key_names_the_file_the_key_and_a_likely_fix(settings_file: Path) -> None:
    message = refusal(settings_file, 'log_levle = "INFO"\n')
    assert f"{settings_file}: log_levle: unknown setting (did you mean log_level?)" in message


def test_upper_case_keys_are_unknown_with_the_right_name_suggested(settings_file: Path) -> None:
    message = refusal(settings_file, 'LOG_LEVEL = "INFO"\n')
    assert f"{settings_file}: LOG_LEVEL: unknown setting (did you mean log_level?)" in message


def test_a_wrong_type_names_the_file_the_key_and_the_reason(settings_file: Path) -> None:
    message = refusal(settings_file, 'max_body_bytes = "lots"\nrequest_timeout_seconds = -1\n')
    assert f"{settings_file}: max_body_bytes: Input should be a valid integer" in message
    assert f"{settings_file}: request_timeout_seconds: Input should be greater than 0" in message


def test_the_models_own_checks_apply_to_the_file(settings_file: Path) -> None:
    message = refusal(settings_file, 'rate_limit_default = "often"\n')
    assert f"{settings_file}: rate_limit_default:" in message


def test_every_problem_is_reported_at_once(settings_file: Path) -> None:
    message = refusal(settings_file, 'colour = "blue"\nmax_body_bytes = "lots"\n')
    assert message.splitlines()[0] == "invalid settings file:"
    assert "colour: unknown setting" in message
    assert "max_body_bytes:" in message


def test_a_missing_file_is_an_error(settings_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings()


def test_invalid_toml_is_an_error(settings_file: Path) -> None:
    message = refusal(settings_file, "log_level = \n")
    assert f"{settings_file}: not valid TOML" in message


class TestSecretsInProduction:
    @pytest.fixture(autouse=True)
    def production(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")

    def test_secrets_in_the_file_are_refused_and_not_shown(self, settings_file: Path) -> None:
        message = refusal(
            settings_file, f'secret_key = "{GOOD_KEY}"\ndatabase_url = "{POSTGRES_URL}"\n'
        )
        assert (
            f"{settings_file}: secret_key: secrets are refused in a settings file in production;"
            " set SECRET_KEY in the environment or a secrets store"
        ) in message
        assert f"{settings_file}: database_url: secrets are refused" in message
        assert GOOD_KEY not in message
        assert ":pw@" not in message

    def test_a_url_without_password_may_be_in_the_file(
        self, settings_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings_file.write_text(
            'database_url = "postgresql://db.internal:5432/app"\n'
            'redis_url = "redis://cache.internal:6379/0"\nlog_level = "WARNING"\n'
        )
        monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
        monkeypatch.setenv("ENCRYPTION_KEYS", "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXQ=")
        settings = load_settings()
        assert settings.database_url == "postgresql+asyncpg://db.internal:5432/app"
        assert settings.log_level == "WARNING"

    def test_production_named_in_the_file_itself_counts(
        self, settings_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("ENVIRONMENT")
        message = refusal(settings_file, f'environment = "production"\nsecret_key = "{GOOD_KEY}"\n')
        assert "secret_key: secrets are refused in a settings file in production" in message

    def test_the_whole_configuration_is_still_checked(self, settings_file: Path) -> None:
        message = refusal(settings_file, 'log_level = "WARNING"\n')
        assert "SECRET_KEY is missing" in message


def test_outside_production_the_file_may_hold_a_secret(settings_file: Path) -> None:
    settings_file.write_text(f'secret_key = "{GOOD_KEY}"\n')
    settings = load_settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == GOOD_KEY
