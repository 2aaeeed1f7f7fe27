"""structlog for every log line: the service's, uvicorn's, SQLAlchemy's and Celery's.

Standard-library loggers are routed through the same processors, so one request's lines all carry
its context (`request_id`, `method`, `path`, `user_id`) and one format.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

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
    renderer: Processor
    if log_format == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Colour only on a terminal: a file or a pipe would get raw ANSI escape codes.
        renderer = structlog.dev.ConsoleRenderer(colors=_is_terminal(stream))

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
