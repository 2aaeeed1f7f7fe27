"""Event handlers: what happens after a domain event, run by the outbox relay.

A handler is `async def handler(services, uow, event)`, registered with `@handles(EventType)` in
any module of this package (each is imported by `registered_handlers`). It runs in a unit of
work of its own, once per event: the relay records it in `processed_events` in the same
transaction, so a redelivered event is skipped. Pass ids to tasks and services, never ORM objects.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

from {{ cookiecutter.project_slug }}.core.events import Event
from {{ cookiecutter.project_slug }}.db.session import UnitOfWork

if TYPE_CHECKING:
    from {{ cookiecutter.project_slug }}.container import Container

E = TypeVar("E", bound=Event)
HandlerFunction = Callable[["Container", UnitOfWork, E], Awaitable[None]]

# Event name -> its handler functions, in registration order.
_handlers: dict[str, list[HandlerFunction[Event]]] = {}


def handles(event_type: type[E]) -> Callable[[HandlerFunction[E]], HandlerFunction[E]]:
    """Register the decorated function as a handler of `event_type`."""

    def register(function: HandlerFunction[E]) -> HandlerFunction[E]:
        _handlers.setdefault(event_type.name, []).append(cast(HandlerFunction[Event], function))
        return function

    return register


def registered_handlers() -> dict[str, list[HandlerFunction[Event]]]:
    """Every handler of every module of this package, by event name."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return {name: list(functions) for name, functions in _handlers.items()}


def handler_name(function: HandlerFunction[Event]) -> str:
    """Stable across releases as long as the function keeps its module and name."""
    return f"{function.__module__}.{function.__qualname__}"
