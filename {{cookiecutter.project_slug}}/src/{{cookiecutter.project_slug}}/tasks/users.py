"""Account follow-ups."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import OperationalError

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.mail import LogMailer, Mailer, Message
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.services.user import UserService
from {{ cookiecutter.project_slug }}.tasks.app import celery_app
from {{ cookiecutter.project_slug }}.tasks.runtime import run_in_unit_of_work

log = get_logger(__name__)


async def send_welcome(uow: UnitOfWork, user_id: uuid.UUID, mailer: Mailer) -> bool:
    """Send the welcome e-mail once; a redelivered task finds it sent and does nothing."""
    users = UserService(uow, UserRepository(uow.session))
    user = await users.get(user_id)
    if user.welcome_email_sent_at is not None:
        return False
    mailer.send(Message(to=user.email, subject="Welcome", body="Your account is ready."))
    return await users.mark_welcomed(user_id)


@celery_app.task(
    name="{{ cookiecutter.project_slug }}.users.send_welcome_email",
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_welcome_email(user_id: str) -> bool:
    sent = run_in_unit_of_work(lambda uow: send_welcome(uow, uuid.UUID(user_id), LogMailer()))
    log.info("welcome e-mail task finished", user_id=user_id, sent=sent)
    return sent


class CeleryUserNotifier:
    """`UserNotifier` that hands follow-ups to Celery."""

    def user_registered(self, user_id: uuid.UUID) -> None:
        send_welcome_email.delay(str(user_id))
