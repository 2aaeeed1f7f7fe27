"""The app's routes as one flat list, for code that matches a path before the router does."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute


def flat_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """`routes` with every included router expanded into the routes it holds."""
    flat: list[BaseRoute] = []
    for route in routes:
        # FastAPI keeps an included router as one lazy group (`effective_candidates`); its
        # routes carry the full path only once expanded.
        expand = getattr(route, "effective_candidates", None)
        if callable(expand):
            flat.extend(flat_routes(expand()))
        else:
            flat.append(route)
    return flat
