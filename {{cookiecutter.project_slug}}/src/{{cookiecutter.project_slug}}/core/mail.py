"""Outbound e-mail behind a small protocol, so tests and development never send real mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...


class LogMailer:
    """Writes messages to the log; replace with an SMTP or provider client in production."""

    def send(self, message: Message) -> None:
        log.info("e-mail sent", to=message.to, subject=message.subject)
