"""A relay process that dies right after a handler's effect commits, before the event is marked.

Run as `python -m tests.integration.services.outbox_relay_worker DATABASE_URL`. The handler
inserts into `relay_effects` and, once its unit of work has committed, SIGKILLs this process:
the relay never gets to mark the event sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import ClassVar

from sqlalchemy import text

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    create_session_maker,
)
from {{ cookiecutter.project_slug }}.services.outbox import Handler, OutboxRelay, RelayPolicy

HANDLER = "tests.record_effect"


class Shipped(Event):
    name: ClassVar[str] = "test.shipped"
    aggregate: ClassVar[str] = "order_id"

    order_id: str


async def record_effect(uow: UnitOfWork, event: Event) -> None:
    await uow.session.execute(
        text("INSERT INTO relay_effects (event_id) VALUES (:event_id)"),
        {"event_id": event.event_id},
    )


def relay(session_maker: SessionMaker, *, die_after_effect: bool) -> OutboxRelay:
    async def handle(uow: UnitOfWork, event: Event) -> None:
        await record_effect(uow, event)
        if die_after_effect:
            uow.after_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))

    return OutboxRelay(
        session_maker, {Shipped.name: [Handler(HANDLER, handle)]}, RelayPolicy(batch_size=10)
    )


async def main(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=2)
    try:
        await relay(create_session_maker(engine), die_after_effect=True).run_once()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
    sys.exit(3)  # never reached: the handler's commit ends the process
