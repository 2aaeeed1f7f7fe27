"""Account follow-ups."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from sqlalchemy.exc import OperationalError

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.mail import Message
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.services.user import UserRegistered
from {{ cookiecutter.project_slug }}.tasks.app import run_service, subscribe

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

SEND_WELCOME_EMAIL = "{{ cookiecutter.project_slug }}.users.send_welcome_email"

log = get_logger(__name__)


@shared_task(
    name=SEND_WELCOME_EMAIL,
    bind=True,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_welcome_email(self: Task[Any, Any], user_id: str) -> bool:
    """Send the welcome e-mail once; a redelivered task finds it sent and does nothing."""

    async def send(services: Container, uow: UnitOfWork) -> bool:
        users = services.users(uow)
        user = await users.get(uuid.UUID(user_id))
        if user.welcome_email_sent_at is not None:
            return False
        services.mailer.send(
            Message(to=user.email, subject="Welcome", body="Your account is ready.")
        )
        return await users.mark_welcomed(user.id)

    sent = run_service(self, send)
    log.info("welcome e-mail task finished", user_id=user_id, sent=sent)
    return sent


subscribe(UserRegistered, SEND_WELCOME_EMAIL)
