"""Secrets never reach a log sink, whether logged by the service or by a library; console
lines are coloured on a terminal only."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from {{ cookiecutter.project_slug }}.core.logging import (
    REDACTED,
    bind_context,
    configure_logging,
    get_logger,
    log_duration,
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


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    """The development console pipeline, written to a buffer instead of stderr."""
    configure_logging("INFO", "console")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    yield buffer
    configure_logging("WARNING", "console")


def fail_deeply(depth: int, password: str) -> None:
    ballast = "b" * 100_000  # a large local: rendering locals would copy it into the log
    if depth:
        fail_deeply(depth - 1, password)
    raise RuntimeError(f"failed with {len(ballast)} bytes at hand")


class TestConsoleExceptions:
    def test_tracebacks_show_no_local_variables(self, console_log: io.StringIO) -> None:
        secret = "-".join(["hunter2", "hunter2"])  # not on a line the traceback quotes
        try:
            fail_deeply(3, password=secret)
        except RuntimeError:
            get_logger("tests").exception("request failed")

        output = console_log.getvalue()
        assert "RuntimeError: failed with 100000 bytes at hand" in output
        assert "fail_deeply" in output
        assert "hunter2-hunter2" not in output
        assert "bbbbbbbb" not in output

    def test_tracebacks_stay_small_however_deep_the_stack(self, console_log: io.StringIO) -> None:
        try:
            fail_deeply(200, password="x")
        except RuntimeError:
            get_logger("tests").exception("request failed")

        output = console_log.getvalue()
        assert len(output) < 10_000
        # The innermost frames and the error itself are what is kept.
        assert output.rstrip().endswith("RuntimeError: failed with 100000 bytes at hand")


class TestBindContext:
    def test_values_reach_every_line_inside_and_none_after(self, json_log: io.StringIO) -> None:
        log = get_logger("tests")
        with bind_context(task_id="t-1", command="sync"):
            log.info("inside")
        log.info("after")

        inside, after = lines(json_log)
        assert (inside["task_id"], inside["command"]) == ("t-1", "sync")
        assert "task_id" not in after

    def test_nested_blocks_restore_the_outer_value(self, json_log: io.StringIO) -> None:
        log = get_logger("tests")
        with bind_context(task_id="outer"):
            with bind_context(task_id="inner"):
                log.info("nested")
            log.info("restored")

        nested, restored = lines(json_log)
        assert nested["task_id"] == "inner"
        assert restored["task_id"] == "outer"

    async def test_concurrent_tasks_keep_their_own_values(self, json_log: io.StringIO) -> None:
        log = get_logger("tests")
        both_bound = asyncio.Barrier(2)

        async def job(name: str) -> None:
            with bind_context(job=name):
                await both_bound.wait()
                log.info("working", expected=name)

        await asyncio.gather(job("a"), job("b"))

        assert {(line["job"], line["expected"]) for line in lines(json_log)} == {
            ("a", "a"),
            ("b", "b"),
        }


@log_duration("sync work")
def sync_work(value: int) -> int:
    if value < 0:
        raise ValueError("negative")
    return value * 2


@log_duration()
async def async_work(value: int) -> int:
    await asyncio.sleep(0)
    if value < 0:
        raise ValueError("negative")
    return value * 2


class TestLogDuration:
    def test_a_sync_call_is_timed_and_returns_its_result(self, json_log: io.StringIO) -> None:
        assert sync_work(21) == 42

        [line] = lines(json_log)
        assert line["event"] == "sync work"
        assert line["outcome"] == "ok"
        assert line["duration_ms"] >= 0

    async def test_an_async_call_is_timed_and_returns_its_result(
        self, json_log: io.StringIO
    ) -> None:
        assert await async_work(21) == 42

        [line] = lines(json_log)
        assert line["event"] == "async_work"
        assert line["outcome"] == "ok"
        assert line["duration_ms"] >= 0

    async def test_failures_are_logged_and_reraised(self, json_log: io.StringIO) -> None:
        with pytest.raises(ValueError, match="negative"):
            sync_work(-1)
        with pytest.raises(ValueError, match="negative"):
            await async_work(-1)

        sync_line, async_line = lines(json_log)
        assert (sync_line["outcome"], sync_line["error"]) == ("error", "ValueError")
        assert (async_line["outcome"], async_line["error"]) == ("error", "ValueError")

    def test_the_wrapper_keeps_the_function_name(self) -> None:
        assert sync_work.__name__ == "sync_work"
        assert async_work.__name__ == "async_work"
