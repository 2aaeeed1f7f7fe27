"""Domain events: typed facts a service records in the same transaction as the change.

Services publish through the `EventPublisher` protocol and never learn who listens: the
composition root's publisher writes each event to the `outbox` table, and the outbox relay hands
it to its handlers after the commit, at least once. Payloads are JSON-friendly models, so an
event survives the round trip through the table (and a broker) unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

# What every event carries besides its payload.
METADATA_FIELDS = frozenset({"event_id", "occurred_at", "request_id", "actor_id"})


def _current_request_id() -> str | None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return request_id if isinstance(request_id, str) else None


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every domain event; subclasses set `name` and `aggregate` and declare the payload.

    `aggregate` names the payload field whose value identifies the thing the event is about:
    events of one aggregate are delivered in the order they were recorded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    aggregate: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    # The request that caused the event (from the logging context), to join up log lines.
    request_id: str | None = Field(default_factory=_current_request_id)
    # The user who caused it, when there is one.
    actor_id: uuid.UUID | None = None

    _registry: ClassVar[dict[str, type[Event]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return  # an abstract intermediate class
        if cls.name in Event._registry and Event._registry[cls.name] is not cls:
            raise TypeError(f"two event classes are named {cls.name!r}")
        Event._registry[cls.name] = cls

    @property
    def aggregate_key(self) -> str:
        """`<event name's first part>:<aggregate id>`, e.g. `item:3f2c...`."""
        return f"{self.name.partition('.')[0]}:{getattr(self, self.aggregate)}"

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=set(METADATA_FIELDS))

    @staticmethod
    def type_named(name: str) -> type[Event] | None:
        return Event._registry.get(name)


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> None:
        """Record `event` in the current transaction; it reaches its handlers after the commit."""
        ...


class EventTracing(Protocol):
    """Carries the trace of the transaction that records an event to the runs of its handlers.

    The relay delivers an event later, often in another process, from a run that several
    requests' events share: without this, a handler's work would belong to whichever trace that
    run happens to be in. The composition root picks the implementation: `UNTRACED` unless
    tracing is on.
    """

    def capture(self) -> dict[str, str] | None:
        """The current trace context as W3C trace-context headers, stored with the event."""
        ...

    def handling(
        self, handler: str, event: Event, context: Mapping[str, str] | None
    ) -> AbstractContextManager[object]:
        """Wraps one run of `handler` on `event`, in the trace `context` recorded with it."""
        ...


class Untraced:
    """`EventTracing` when tracing is off: nothing stored, nothing started."""

    def capture(self) -> None:
        return None

    def handling(
        self,
        handler: str,  # noqa: ARG002 - the protocol's signature
        event: Event,  # noqa: ARG002
        context: Mapping[str, str] | None,  # noqa: ARG002
    ) -> AbstractContextManager[object]:
        return nullcontext()


UNTRACED = Untraced()
