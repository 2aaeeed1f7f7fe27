"""Secrets never reach a log sink, whether logged by the service or by a library; console
lines are coloured on a terminal only."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from {{ cookiecutter.project_slug }}.core.logging import (
    REDACTED,
    configure_logging,
    get_logger,
    redact_secrets,
)


def redact(**event: Any) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", event))


class TestRedactSecrets:
    @pytest.mark.parametrize(
        "key",
        [
            "password",
            "new_password",
            "access_token",
            "refresh_token",
            "Authorization",
            "api_key",
            "x_api_key",
            "secret_key",
            "cookie",
        ],
    )
    def test_sensitive_top_level_keys_are_redacted(self, key: str) -> None:
        assert redact(event="login", **{key: "s3cr3t-value"})[key] == REDACTED

    def test_nested_mappings_are_redacted(self) -> None:
        event = redact(
            event="request",
            headers={"Authorization": "Bearer abc.def.ghi", "accept": "application/json"},
            body={"user": {"email": "a@example.com", "password": "hunter2-hunter2"}},
        )
        assert event["headers"] == {"Authorization": REDACTED, "accept": "application/json"}
        assert event["body"] == {"user": {"email": "a@example.com", "password": REDACTED}}

    def test_ordinary_values_are_kept(self) -> None:
        event = redact(event="item created", item_id="123", status=201, user_id="u-1")
        assert event == {"event": "item created", "item_id": "123", "status": 201, "user_id": "u-1"}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The real pipeline in JSON, written to a buffer instead of stderr."""
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    yield buffer
    configure_logging("WARNING", "console")


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


class TestPipeline:
    def test_service_log_lines_are_redacted(self, json_log: io.StringIO) -> None:
        get_logger("tests").info(
            "login attempt", email="a@example.com", password="hunter2-hunter2", token="t0k3n"
        )
        output = json_log.getvalue()
        assert "hunter2-hunter2" not in output
        assert "t0k3n" not in output
        [line] = lines(json_log)
        assert line["event"] == "login attempt"
        assert line["email"] == "a@example.com"
        assert line["password"] == REDACTED

    def test_standard_library_log_lines_are_redacted(self, json_log: io.StringIO) -> None:
        logging.getLogger("some.library").warning(
            "calling upstream", extra={"authorization": "Bearer abc.def.ghi"}
        )
        output = json_log.getvalue()
        assert "abc.def.ghi" not in output
        [line] = lines(json_log)
        assert line["event"] == "calling upstream"
        assert line["authorization"] == REDACTED


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestConsoleColour:
    @pytest.fixture(autouse=True)
    def _restore(self) -> Iterator[None]:
        yield
        configure_logging("WARNING", "console")

    def test_a_file_or_pipe_gets_no_escape_codes(self) -> None:
        sink = io.StringIO()
        configure_logging("INFO", "console", stream=sink)
        get_logger("tests").info("service line", key="value")
        logging.getLogger("some.library").warning("library line")
        output = sink.getvalue()
        assert "service line" in output
        assert "library line" in output
        assert "\x1b[" not in output

    def test_a_terminal_gets_colour(self) -> None:
        terminal = _Terminal()
        configure_logging("INFO", "console", stream=terminal)
        get_logger("tests").info("service line")
        assert "\x1b[" in terminal.getvalue()
