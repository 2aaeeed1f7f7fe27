"""The rate-limit middleware over the in-process store: buckets, keys, headers and refusals."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient, Response
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.api.deps import rate_limit
from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver
from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    InMemoryRateLimitStore,
    RateLimiter,
    Rule,
    parse_rules,
)
from {{ cookiecutter.project_slug }}.middleware.rate_limit import RateLimitMiddleware
from {{ cookiecutter.project_slug }}.middleware.routes import flat_routes

PROXY = "10.0.0.1"
# An IETF draft RateLimit / RateLimit-Policy list member: "name";k=int;k=int
MEMBER = re.compile(r'"(?P<name>[^"]+)"(?P<params>(;[a-z]+=\d+)+)')


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


@dataclass
class Principal:
    rate_limit_key: str


class FakeAuth:
    """Stands in for the auth middleware: records a principal named by a test header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope["headers"]:
            if name == b"x-test-user":
                scope.setdefault("state", {})["principal"] = Principal(f"user:{value.decode()}")
        await self.app(scope, receive, send)


def build(
    default: Sequence[Rule],
    auth: Sequence[Rule] = (),
    trusted: Sequence[str] = (),
) -> ASGIApp:
    router = Router(
        routes=[
            Route("/items/{item_id}", ok, methods=["GET", "DELETE"]),
            Route("/api/v1/auth/login", ok, methods=["POST"]),
            Route("/health/live", ok),
            Route("/metrics", ok),
        ]
    )
    limited = RateLimitMiddleware(
        router,
        limiter=RateLimiter(InMemoryRateLimitStore()),
        default_rules=default,
        path_rules={"/api/v1/auth/": auth} if auth else None,
        client_addresses=ClientAddressResolver(trusted),
        routes=lambda: router.routes,
    )
    return FakeAuth(limited)


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    app = build(parse_rules("3/hour"), auth=parse_rules("2/hour", "auth"))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


def proxied(app: ASGIApp, peer: str = PROXY) -> AsyncClient:
    transport = ASGITransport(app=app, client=(peer, 40000))
    return AsyncClient(transport=transport, base_url="http://test")


def parse_members(value: str) -> dict[str, dict[str, int]]:
    members = {}
    for part in value.split(", "):
        match = MEMBER.fullmatch(part)
        assert match is not None, f"not a structured-field list member: {part!r}"
        params = dict(p.split("=") for p in match["params"].strip(";").split(";"))
        members[match["name"]] = {k: int(v) for k, v in params.items()}
    return members


class TestHeaders:
    async def test_every_limited_response_describes_the_quota(self, client: AsyncClient) -> None:
        response = await client.get("/items/1")
        assert response.status_code == 200
        assert parse_members(response.headers["ratelimit-policy"]) == {
            "default": {"q": 3, "w": 3600}
        }
        assert parse_members(response.headers["ratelimit"]) == {"default": {"r": 2, "t": 1200}}
        assert response.headers["x-ratelimit-limit"] == "3"
        assert response.headers["x-ratelimit-remaining"] == "2"
        assert int(response.headers["x-ratelimit-reset"]) > 1_700_000_000

    async def test_remaining_never_increases(self, client: AsyncClient) -> None:
        seen = []
        for _ in range(5):
            response = await client.get("/items/1")
            seen.append(int(response.headers["x-ratelimit-remaining"]))
        assert seen == [2, 1, 0, 0, 0]

    async def test_429_is_a_problem_with_retry_after(self, client: AsyncClient) -> None:
        for _ in range(3):
            await client.get("/items/1")
        response = await client.get("/items/1")
        assert response.status_code == 429
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        body = response.json()
        assert body["status"] == 429
        assert body["instance"] == "/items/1"
        retry_after = int(response.headers["retry-after"])
        assert retry_after == 1200  # one interval of 3/hour
        state = parse_members(response.headers["ratelimit"])["default"]
        assert state["r"] == 0
        assert retry_after >= state["t"] >= 1

    async def test_exempt_paths_carry_no_headers_and_are_never_refused(
        self, client: AsyncClient
    ) -> None:
        for _ in range(10):
            for path in ("/health/live", "/metrics"):
                response = await client.get(path)
                assert response.status_code == 200
                assert "ratelimit" not in response.headers


class TestBuckets:
    async def test_one_route_template_is_one_bucket(self, client: AsyncClient) -> None:
        statuses = [(await client.get(f"/items/{n}")).status_code for n in range(5)]
        assert statuses == [200, 200, 200, 429, 429]

    async def test_methods_and_routes_have_their_own_buckets(self, client: AsyncClient) -> None:
        for _ in range(3):
            await client.get("/items/1")
        assert (await client.delete("/items/1")).status_code == 200
        assert (await client.get("/items/1")).status_code == 429

    async def test_unknown_paths_share_one_bucket(self, client: AsyncClient) -> None:
        statuses = [(await client.get(f"/nowhere/{n}")).status_code for n in range(5)]
        assert statuses == [404, 404, 404, 429, 429]

    async def test_auth_paths_use_the_stricter_rule(self, client: AsyncClient) -> None:
        statuses = [(await client.post("/api/v1/auth/login")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert "auth" in (await client.post("/api/v1/auth/login")).headers["ratelimit-policy"]

    async def test_an_authenticated_caller_is_keyed_on_the_principal(
        self, client: AsyncClient
    ) -> None:
        for _ in range(3):
            assert (await client.get("/items/1", headers={"x-test-user": "7"})).status_code == 200
        assert (await client.get("/items/1", headers={"x-test-user": "7"})).status_code == 429
        # Same address, another user; then the anonymous address bucket: both untouched.
        assert (await client.get("/items/1", headers={"x-test-user": "8"})).status_code == 200
        assert (await client.get("/items/1")).status_code == 200


class TestRouteRules:
    @pytest.fixture
    async def client(self) -> AsyncIterator[AsyncClient]:
        app = FastAPI()

        @app.get("/strict", dependencies=[rate_limit("1/hour")])
        async def strict() -> dict[str, str]:
            return {}

        @app.get("/plain")
        async def plain() -> dict[str, str]:
            return {}

        # Declared on an included router, the rule covers each of its routes.
        reports = APIRouter(prefix="/reports", dependencies=[rate_limit("2/hour")])

        @reports.get("/{report_id}")
        async def report(report_id: int) -> dict[str, int]:
            return {"id": report_id}

        app.include_router(reports)
        limited = RateLimitMiddleware(
            app,
            limiter=RateLimiter(InMemoryRateLimitStore()),
            default_rules=parse_rules("3/hour"),
            routes=lambda: flat_routes(app.router.routes),
        )
        async with AsyncClient(transport=ASGITransport(limited), base_url="http://t") as client:
            yield client

    async def test_a_route_dependency_replaces_the_default_rules(self, client: AsyncClient) -> None:
        first = await client.get("/strict")
        assert first.headers["ratelimit-policy"] == '"route";q=1;w=3600'
        assert (await client.get("/strict")).status_code == 429
        statuses = [(await client.get("/plain")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]

    async def test_a_router_dependency_limits_every_route_of_the_router(
        self, client: AsyncClient
    ) -> None:
        statuses = [(await client.get(f"/reports/{n}")).status_code for n in range(3)]
        assert statuses == [200, 200, 429]


class TestClientAddress:
    async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(self) -> None:
        app = build(parse_rules("3/hour"), trusted=["192.0.2.0/24"])
        async with proxied(app, peer="198.51.100.7") as client:
            statuses = [
                (
                    await client.get("/items/1", headers={"x-forwarded-for": f"203.0.113.{n}"})
                ).status_code
                for n in range(6)
            ]
        assert statuses == [200, 200, 200, 429, 429, 429]

    async def test_behind_a_trusted_proxy_the_forwarded_client_is_keyed(self) -> None:
        app = build(parse_rules("1/hour"), trusted=[PROXY])
        async with proxied(app) as client:
            first = await client.get(
                "/items/1", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.1"}
            )
            again = await client.get(
                "/items/1", headers={"x-forwarded-for": "7.7.7.7, 203.0.113.1"}
            )
            other = await client.get(
                "/items/1", headers={"x-forwarded-for": "6.6.6.6, 203.0.113.2"}
            )
        assert [first.status_code, again.status_code, other.status_code] == [200, 429, 200]

    async def test_a_thousand_addresses_in_one_ipv6_64_share_a_bucket(self) -> None:
        app = build(parse_rules("5/hour"), trusted=[PROXY])
        network = ipaddress.IPv6Network("2001:db8:aa:bb::/64")
        responses: list[Response] = []
        async with proxied(app) as client:
            for n in range(1000):
                address = str(network[n * 7919 + 1])
                responses.append(await client.get("/items/1", headers={"x-forwarded-for": address}))
            neighbour = await client.get(
                "/items/1", headers={"x-forwarded-for": "2001:db8:aa:bc::1"}
            )
        assert sum(r.status_code == 200 for r in responses) == 5
        assert neighbour.status_code == 200
