"""Domain events: facts a service records, delivered to their handlers after the commit.

Services publish through the `EventPublisher` protocol and never learn who listens: with Celery
the handlers are tasks, without it nothing is subscribed and events are dropped. Payloads are
JSON-friendly models, so they cross a broker unchanged.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """Base of every domain event; subclasses declare the payload's fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class EventPublisher(Protocol):
    def publish(self, event: Event) -> None:
        """Hand `event` to its handlers; called only after the recording transaction commits."""
        ...


class DiscardingPublisher:
    """The publisher of a service with no handlers: every event is dropped."""

    def publish(self, event: Event) -> None:
        del event
