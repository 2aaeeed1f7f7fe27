"""Account follow-ups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.mail import Message
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork
from {{ cookiecutter.project_slug }}.handlers import handles
from {{ cookiecutter.project_slug }}.services.user import UserRegistered

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

log = get_logger(__name__)


@handles(UserRegistered)
async def send_welcome_email(services: Container, uow: UnitOfWork, event: UserRegistered) -> None:
    """Send the welcome e-mail; the sent-at mark also covers accounts created before the outbox."""
    users = services.users(uow)
    user = await users.get(event.user_id)
    if user.welcome_email_sent_at is not None:
        return
    services.mailer.send(Message(to=user.email, subject="Welcome", body="Your account is ready."))
    await users.mark_welcomed(user.id)
    log.info("welcome e-mail sent", user_id=str(user.id))
