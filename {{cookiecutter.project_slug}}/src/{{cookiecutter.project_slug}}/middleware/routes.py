"""The app's routes as one flat list, for code that matches a path before the router does."""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from starlette.routing import BaseRoute
from starlette.types import Scope


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


# Per app: id(route) -> the route's full path template. Rebuilt when a route is missing
# (routes added after the first request), so it never goes stale.
_TEMPLATES: weakref.WeakKeyDictionary[object, dict[int, str]] = weakref.WeakKeyDictionary()


def route_template(scope: Scope) -> str | None:
    """The full path template of the route that handled `scope` (`/api/v1/items/{item_id}`),
    or `None` when no route matched. Call it after the router has run."""
    route = scope.get("route")
    if route is None:
        return None
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return getattr(route, "path", None)
    templates = _TEMPLATES.get(app)
    if templates is None or id(route) not in templates:
        # An included router's routes know only their own part of the path; the expanded
        # list knows the whole of it.
        templates = {}
        for candidate in flat_routes(router.routes):
            original = getattr(candidate, "original_route", None) or candidate
            path = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
            if path is not None:
                templates.setdefault(id(original), path)
        _TEMPLATES[app] = templates
    return templates.get(id(route), getattr(route, "path", None))
