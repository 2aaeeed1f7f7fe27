"""Rate limits per client and route, before the application runs.

Each request that is not exempt is charged to one bucket per rule: the caller (the principal the
auth middleware recorded, else the client address) on the route template, so `/items/1` and
`/items/2` share a bucket and unknown paths share one too. Paths under a `path_rules` prefix use
those rules instead of the default ones. Every limited response carries the IETF draft headers
(`RateLimit-Policy`, `RateLimit`) and the legacy `X-RateLimit-*` ones, all from the decision;
a refusal is a 429 problem with `Retry-After`, and a store outage under fail-closed a 503.
A route can declare rules of its own as a dependency (`api.deps.rate_limit("5/minute")`); they
replace the default and path rules on that route.

`revocation_key` (optional) names, per request, a key whose existence means the caller's token
was revoked: the store answers it in the same round trip as the check, and the answer is kept
for the route's dependencies (`known_revocation`), which then skip a round trip of their own.

The caller is read from `scope["state"]["principal"]`: a string, or an object whose
`rate_limit_key` attribute is one (e.g. `user:<id>`, `api-key:<id>`). Without it, the address.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    Decision,
    RateLimiter,
    RouteLimit,
    Rule,
)
from {{ cookiecutter.project_slug }}.middleware.problem import send_problem

DEFAULT_EXEMPT_PREFIXES = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")
UNMATCHED_ROUTE = "<unmatched>"
ROUTE_CACHE_SIZE = 4096
REVOKED_STATE = "token_revoked"


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter | Callable[[Scope], RateLimiter],
        default_rules: Sequence[Rule],
        path_rules: Mapping[str, Sequence[Rule]] | None = None,
        client_addresses: ClientAddressResolver | None = None,
        routes: Sequence[BaseRoute] | Callable[[], Sequence[BaseRoute]] = (),
        exempt_prefixes: Sequence[str] = DEFAULT_EXEMPT_PREFIXES,
        revocation_key: Callable[[Scope], str | None] | None = None,
    ) -> None:
        """`routes` (or a callable returning them, read on first use) name the buckets.

        `limiter` may be a callable that finds it for each request: the app's limiter lives in
        the container its lifespan builds, after the middleware stack exists.
        """
        self.app = app
        self.limiter = limiter
        self.default_rules = tuple(default_rules)
        self.path_rules = [(prefix, tuple(rules)) for prefix, rules in (path_rules or {}).items()]
        self.client_addresses = client_addresses or ClientAddressResolver()
        self._routes = routes
        self.exempt_prefixes = tuple(prefix.rstrip("/") for prefix in exempt_prefixes)
        self.revocation_key = revocation_key
        # (method, path) -> (route template, the route's own rules or None)
        self._routes_seen: OrderedDict[tuple[str, str], tuple[str, tuple[Rule, ...] | None]] = (
            OrderedDict()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        template, route_rules = self._route(scope)
        rules = route_rules or self._rules_for(scope["path"])
        identity = _principal_key(scope) or self.client_addresses.client_key(scope)
        bucket = f"{scope['method']} {template}"
        limiter = self.limiter(scope) if callable(self.limiter) else self.limiter
        revocation = self.revocation_key(scope) if self.revocation_key else None
        decision = await limiter.check(
            identity, bucket, rules, exists=(revocation,) if revocation else ()
        )
        if decision.exists:
            scope.setdefault("state", {})[REVOKED_STATE] = decision.exists[0]
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            retry = (b"retry-after", str(decision.retry_after_seconds).encode())
            if decision.error:
                detail = "the rate limiter is unavailable; try again shortly"
                await send_problem(scope, send, 503, detail, headers=[retry])
            else:
                detail = f"rate limit exceeded; retry in {decision.retry_after_seconds} s"
                await send_problem(scope, send, 429, detail, headers=[*headers, retry])
            return
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.exempt_prefixes)

    def _rules_for(self, path: str) -> tuple[Rule, ...]:
        for prefix, rules in self.path_rules:
            if path.startswith(prefix):
                return rules
        return self.default_rules

    def _route(self, scope: Scope) -> tuple[str, tuple[Rule, ...] | None]:
        """The matched route's path template and own rules, cached per path (bounded LRU)."""
        cache_key = (scope["method"], scope["path"])
        seen = self._routes_seen.get(cache_key)
        if seen is not None:
            self._routes_seen.move_to_end(cache_key)
            return seen
        routes = self._routes() if callable(self._routes) else self._routes
        seen = (UNMATCHED_ROUTE, None)
        for route in routes:
            match, _ = route.matches(scope)
            if match is Match.NONE:
                continue
            path = getattr(route, "path", UNMATCHED_ROUTE)
            seen = (f"{path}/*" if isinstance(route, Mount) else path, None)
            if match is Match.FULL:
                seen = (seen[0], _route_rules(route))
                break  # a PARTIAL match (wrong method) is kept only if nothing matches fully
        self._routes_seen[cache_key] = seen
        if len(self._routes_seen) > ROUTE_CACHE_SIZE:
            self._routes_seen.popitem(last=False)
        return seen


def _route_rules(route: BaseRoute) -> tuple[Rule, ...] | None:
    """The rules of a `RouteLimit` among the route's dependencies (its router's included)."""
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, RouteLimit):
            return dependant.call.rules
        pending.extend(dependant.dependencies)
    return None


def known_revocation(scope: Scope) -> bool | None:
    """Whether the caller's token is revoked, as the rate-limit check found; None if unasked."""
    revoked = scope.get("state", {}).get(REVOKED_STATE)
    return revoked if isinstance(revoked, bool) else None


def _principal_key(scope: Scope) -> str | None:
    principal = scope.get("state", {}).get("principal")
    key = getattr(principal, "rate_limit_key", principal)
    return f"principal:{key}" if isinstance(key, str) and key else None


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The headers describing `decision`'s quotas; none when the store was not asked."""
    binding = decision.binding
    if binding is None or decision.reset_epoch is None:
        return []
    policy = ", ".join(
        f"{_sf_string(q.rule.name)};q={q.rule.limit};w={q.rule.window}" for q in decision.quotas
    )
    state = ", ".join(
        f"{_sf_string(q.rule.name)};r={q.remaining};t={_seconds(q.reset_after)}"
        for q in decision.quotas
    )
    reset_epoch = decision.reset_epoch
    return [
        (b"ratelimit-policy", policy.encode()),
        (b"ratelimit", state.encode()),
        (b"x-ratelimit-limit", str(binding.rule.limit).encode()),
        (b"x-ratelimit-remaining", str(binding.remaining).encode()),
        (b"x-ratelimit-reset", str(_seconds(reset_epoch)).encode()),
    ]


def _seconds(value: float) -> int:
    # Rounded up: a client that waits the advertised time must find the quota there.
    return math.ceil(value)
