"""structlog for every log line: the service's, uvicorn's, SQLAlchemy's and Celery's.

Standard-library loggers are routed through the same processors, so one request's lines all carry
its context (`request_id`, `method`, `path`, `user_id`) and one format.
"""

from __future__ import annotations

import functools
import inspect
import logging
import logging.config
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, ParamSpec, TextIO, TypeVar, cast

import structlog
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from {{ cookiecutter.project_slug }}.core.telemetry import log_processors

P = ParamSpec("P")
R = TypeVar("R")

REDACTED = "[redacted]"
# Matched case-insensitively against keys anywhere in an event, nested mappings included.
_SENSITIVE = ("password", "secret", "token", "authorization", "api_key", "apikey", "cookie")


def _redact(value: object) -> object:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _is_sensitive(key) else _redact(item) for key, item in value.items()
        }
    return value


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in _SENSITIVE)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Blank out values whose key names a secret, so they never reach a log sink."""
    for key in list(event_dict):
        if _is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn duplicates its message with ANSI codes under this key.
    event_dict.pop("color_message", None)
    return event_dict


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


# A traceback shows its innermost frames and stops at this size, whatever the stack or the
# exception's message (SQL with its parameters, say) holds.
TRACEBACK_FRAMES = 30
TRACEBACK_MAX_CHARS = 8_000


def bounded_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """A plain traceback without local variables, at bounded cost and size.

    The console renderer's default (rich, with locals) costs tens of kilobytes and milliseconds
    per exception, enough to stall the event loop when a dependency fails under load, and prints
    locals (passwords, tokens) that the redaction processor never sees.
    """
    text = "".join(traceback.format_exception(*exc_info, limit=-TRACEBACK_FRAMES))
    if len(text) > TRACEBACK_MAX_CHARS:
        # Keep the end: the innermost frames and the exception itself.
        text = "...[truncated]\n" + text[-TRACEBACK_MAX_CHARS:]
    sio.write("\n" + text)


def configure_logging(
    level: str = "INFO",
    log_format: Literal["json", "console"] = "console",
    stream: TextIO | None = None,
) -> None:
    """Install the processors for structlog and the standard library; safe to call again.

    Lines go to `stream` (standard error by default).
    """
    stream = stream if stream is not None else sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    shared += log_processors()
    renderer: Processor
    if log_format == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Colour only on a terminal: a file or a pipe would get raw ANSI escape codes.
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_terminal(stream), exception_formatter=bounded_traceback
        )

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter: MutableMapping[str, Any] = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": shared,
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"structlog": formatter},
            "handlers": {
                "default": {
                    "class": "logging.StreamHandler",
                    "formatter": "structlog",
                    "stream": stream,
                }
            },
            "root": {"handlers": ["default"], "level": level},
            "loggers": {
                # uvicorn's access log is replaced by the service's own access line.
                "uvicorn.access": {"handlers": [], "propagate": False},
                "uvicorn": {"handlers": [], "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                "celery": {"handlers": [], "propagate": True},
            },
        }
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_context(**values: Any) -> Iterator[None]:
    """Add `values` to every log line inside the block, then restore what was there before.

    For CLI commands and tasks, which have no request middleware to do it for them:
    `with bind_context(task_id=task.request.id): ...`. Safe across `await`: the context is
    per task (context variables), so concurrent tasks never see each other's values.
    """
    with structlog.contextvars.bound_contextvars(**values):
        yield


def log_duration(
    event: str | None = None, *, level: int = logging.INFO
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Log how long each call of the decorated function (sync or async) took.

    One line per call: `event` (default: the function's qualified name), `duration_ms` and
    `outcome` (`ok` or `error`); an exception is logged by name and re-raised unchanged.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = event or func.__qualname__
        logger = get_logger(func.__module__)

        def record(started: float, error: BaseException | None) -> None:
            logger.log(
                level,
                name,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                outcome="ok" if error is None else "error",
                error=None if error is None else type(error).__name__,
            )

        if inspect.iscoroutinefunction(func):
            run = cast(Callable[P, Any], func)

            @functools.wraps(func)
            async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                started = time.perf_counter()
                try:
                    result = await run(*args, **kwargs)
                except BaseException as exc:
                    record(started, exc)
                    raise
                record(started, None)
                return result

            return cast(Callable[P, R], timed_async)

        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                record(started, exc)
                raise
            record(started, None)
            return result

        return timed

    return decorate
