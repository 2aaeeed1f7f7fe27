"""The Redis rate-limit store against a real Redis: exactness across processes, server time,
all-or-nothing rules, expiry, faults (dead port, CLIENT PAUSE, SCRIPT FLUSH) and round trips.

Every test uses keys under a random prefix and a limiter connection with a name of its own;
commands are attributed to that connection with MONITOR, so other users of the Redis do not
disturb the counts. The tests run one after another (one xdist group): some pause Redis or
flush its script cache for a moment.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from {{ cookiecutter.project_slug }}.core.errors import PROBLEM_MEDIA_TYPE
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    Decision,
    RateLimiter,
    Rule,
    parse_rules,
)
from {{ cookiecutter.project_slug }}.core.rate_limit_redis import (
    GCRA_SCRIPT,
    RedisRateLimitStore,
    UnsafeEvictionPolicyError,
    check_eviction_policy,
    create_rate_limit_redis,
)
from {{ cookiecutter.project_slug }}.middleware.rate_limit import (
    RateLimitMiddleware,
    known_revocation,
)
from tests.services import ServiceUrls

pytestmark = pytest.mark.xdist_group("rate-limit-redis")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEAD_URL = "redis://127.0.0.1:1"
CLIENT = "ip:203.0.113.1"
BUCKET = "GET /items/{item_id}"


@pytest.fixture
async def admin(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    redis = Redis.from_url(service_urls.redis)
    yield redis
    await redis.aclose()


@pytest.fixture
async def prefix(admin: Redis) -> AsyncIterator[str]:
    prefix = f"test-rl-{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = [key async for key in admin.scan_iter(match=prefix + "*", count=1000)]
    for start in range(0, len(keys), 1000):
        await admin.delete(*keys[start : start + 1000])


@pytest.fixture
def client_name() -> str:
    return f"test-rl-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(service_urls: ServiceUrls, client_name: str) -> AsyncIterator[Redis]:
    # Generous timeouts: on a busy machine a slow answer must not look like an outage here.
    redis = create_rate_limit_redis(service_urls.redis, timeout=5.0, client_name=client_name)
    yield redis
    await redis.aclose()


@pytest.fixture
def limiter(redis: Redis, prefix: str) -> RateLimiter:
    return RateLimiter(RedisRateLimitStore(redis), key_prefix=prefix, timeout=10.0)


async def hits(limiter: RateLimiter, rules: tuple[Rule, ...], count: int) -> list[Decision]:
    return [await limiter.check(CLIENT, BUCKET, rules) for _ in range(count)]


def metric(rule: str, decision: str) -> float:
    labels = {"rule": rule, "decision": decision}
    return REGISTRY.get_sample_value("rate_limit_decisions_total", labels) or 0.0


def unique_rules(spec: str) -> tuple[Rule, ...]:
    return parse_rules(spec, f"r{uuid.uuid4().hex[:8]}")


class CommandLog:
    """Commands Redis executed for the connections named `client_name`, seen through MONITOR."""

    def __init__(self, admin: Redis, client_name: str) -> None:
        self.admin = admin
        self.client_name = client_name
        self.seen: list[tuple[str, str]] = []

    @asynccontextmanager
    async def recording(self) -> AsyncIterator[CommandLog]:
        sentinel = f"end-{uuid.uuid4().hex}"
        async with self.admin.monitor() as monitor:
            reader = asyncio.create_task(self._read(monitor, sentinel))
            try:
                yield self
                await self.admin.echo(sentinel)  # executed after everything the test sent
                await asyncio.wait_for(reader, timeout=60)
            finally:
                reader.cancel()

    async def _read(self, monitor: Any, sentinel: str) -> None:
        while True:
            command = await monitor.next_command()
            text = command["command"]
            if sentinel in text:
                return
            address = f"{command.get('client_address')}:{command.get('client_port')}"
            self.seen.append((address, text.split(" ", 1)[0].upper()))

    async def entries(self) -> list[tuple[str, str]]:
        """(client address, command) of the named connections, in the order Redis ran them."""
        clients = await self.admin.client_list()
        mine = {c["addr"] for c in clients if c.get("name") == self.client_name}
        return [(address, name) for address, name in self.seen if address in mine]

    async def commands(self) -> list[str]:
        return [name for _, name in await self.entries()]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    yield buffer
    configure_logging("WARNING", "console")


def events(buffer: io.StringIO) -> list[str]:
    return [json.loads(line)["event"] for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.mark.slow
async def test_four_server_processes_admit_exactly_the_limit(
    service_urls: ServiceUrls, prefix: str
) -> None:
    start = time.time() + 5  # the processes connect first, then fire together
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.core.rate_limit_redis_worker",
            service_urls.redis,
            prefix,
            "60",
            str(start),
            cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    admitted = [int(stdout) for stdout, _ in outputs]
    assert sum(admitted) == 100  # 240 hits on a 100/day rule
    assert all(0 <= count <= 60 for count in admitted)


class TestAlgorithm:
    async def test_rejected_requests_cost_nothing(self, limiter: RateLimiter) -> None:
        rules = parse_rules("2/2seconds")
        assert [d.allowed for d in await hits(limiter, rules, 2)] == [True, True]
        refused = await hits(limiter, rules, 10)
        assert not any(d.allowed for d in refused)
        waits = [d.retry_after for d in refused]
        assert waits == sorted(waits, reverse=True)  # hammering never pushes the wait back
        await asyncio.sleep(refused[-1].retry_after_seconds)
        assert (await limiter.check(CLIENT, BUCKET, rules)).allowed

    async def test_a_refused_large_request_is_not_charged(self, limiter: RateLimiter) -> None:
        rules = (Rule(10, 3600),)
        assert (await limiter.check(CLIENT, BUCKET, rules, cost=5)).allowed
        assert not (await limiter.check(CLIENT, BUCKET, rules, cost=10)).allowed
        last = await limiter.check(CLIENT, BUCKET, rules, cost=5)
        assert last.allowed
        assert last.quotas[0].remaining == 0

    async def test_several_rules_are_all_or_nothing(self, limiter: RateLimiter) -> None:
        rules = (Rule(100, 60, "minute"), Rule(3, 86400, "day"))
        results = await hits(limiter, rules, 10)
        assert sum(d.allowed for d in results) == 3
        minute, day = results[-1].quotas
        assert (minute.remaining, day.remaining) == (97, 0)

    async def test_client_clock_skew_changes_nothing(
        self, limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The script reads TIME and takes no timestamp: three servers whose clocks are 120 s
        # apart see one bucket and one reset time.
        assert "redis.call('TIME')" in GCRA_SCRIPT
        rules = parse_rules("5/hour")
        real_time, real_time_ns = time.time, time.time_ns
        results: list[Decision] = []
        for skew in (-120, 0, 120, -120, 0, 120, 0, 0):
            monkeypatch.setattr(time, "time", lambda skew=skew: real_time() + skew)
            monkeypatch.setattr(time, "time_ns", lambda skew=skew: real_time_ns() + skew * 10**9)
            results.append(await limiter.check(CLIENT, BUCKET, rules))
        monkeypatch.undo()
        assert [d.allowed for d in results] == [True] * 5 + [False] * 3
        for decision in results:
            assert decision.reset_epoch is not None
            assert abs(decision.reset_epoch - time.time()) <= 3600
        refused_resets = {round(d.reset_epoch or 0) for d in results[5:]}
        assert max(refused_resets) - min(refused_resets) <= 2  # same server time, any skew

    async def test_a_burst_stays_within_limit_plus_refill(self, limiter: RateLimiter) -> None:
        # GCRA's documented bound: in any span of d seconds at most L + d*L/T are admitted.
        rule = Rule(5, 2)
        admitted: list[tuple[float, float]] = []
        until = time.monotonic() + 3
        while time.monotonic() < until:
            sent = time.monotonic()
            decision = await limiter.check(CLIENT, BUCKET, (rule,))
            if decision.allowed:
                admitted.append((sent, time.monotonic()))
        assert len(admitted) >= 5
        for i in range(len(admitted)):
            for j in range(i, len(admitted)):
                span = admitted[j][1] - admitted[i][0]
                assert j - i + 1 <= rule.limit + span * rule.limit / rule.period + 1e-6


class TestKeys:
    @pytest.mark.slow
    async def test_every_key_expires_and_100k_clients_stay_bounded(
        self, limiter: RateLimiter, admin: Redis, prefix: str
    ) -> None:
        rules = parse_rules("5/hour")
        memory_before = (await admin.info("memory"))["used_memory"]
        errors = 0
        # As many at once as the client has connections, so none waits for one on a busy box.
        for start in range(0, 100_000, 50):
            results = await asyncio.gather(
                *(
                    limiter.check(f"ip:10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", BUCKET, rules)
                    for n in range(start, start + 50)
                )
            )
            errors += sum(d.error for d in results)
        assert errors == 0
        keys = [key async for key in admin.scan_iter(match=prefix + "*", count=5000)]
        assert len(keys) == 100_000
        ttls: list[int] = []
        for start in range(0, len(keys), 5000):
            async with admin.pipeline(transaction=False) as pipe:
                for key in keys[start : start + 5000]:
                    pipe.pttl(key)
                ttls += await pipe.execute()
        assert all(0 < ttl <= 720_000 for ttl in ttls)  # one interval of 5/hour at most
        grown = (await admin.info("memory"))["used_memory"] - memory_before
        assert grown < 100_000 * 400  # about 100 bytes a key; far below this bound

    async def test_keys_vanish_when_their_bucket_is_whole(
        self, limiter: RateLimiter, admin: Redis, prefix: str
    ) -> None:
        rules = parse_rules("10/second")
        for n in range(1000):
            await limiter.check(f"ip:10.0.{n >> 8}.{n & 255}", BUCKET, rules)
        await asyncio.sleep(1.0)
        assert [key async for key in admin.scan_iter(match=prefix + "*", count=5000)] == []

    async def test_one_evalsha_per_check_and_nothing_else(
        self, limiter: RateLimiter, admin: Redis, client_name: str
    ) -> None:
        rules = parse_rules("50/hour")
        await limiter.check(CLIENT, BUCKET, rules)  # connects and loads the script
        log = CommandLog(admin, client_name)
        async with log.recording():
            await hits(limiter, rules, 2000)
        commands = await log.commands()
        assert commands.count("EVALSHA") == 2000
        assert set(commands) == {"EVALSHA"}  # no KEYS, SCAN, GET or second round trip


class TestFaults:
    async def test_script_flush_under_load_gives_no_errors(
        self, limiter: RateLimiter, admin: Redis
    ) -> None:
        rules = parse_rules("100/day")

        async def flusher() -> None:
            for _ in range(5):
                await admin.script_flush()
                await asyncio.sleep(0.01)

        flushing = asyncio.create_task(flusher())
        results = []
        for _ in range(10):
            results += await asyncio.gather(
                *(limiter.check(CLIENT, BUCKET, rules) for _ in range(30))
            )
        await flushing
        await admin.script_flush()
        results += await hits(limiter, rules, 5)
        assert not any(d.error for d in results)
        assert sum(d.allowed for d in results) == 100

    async def test_redis_down_fails_open_with_a_log_and_a_metric(
        self, prefix: str, json_log: io.StringIO
    ) -> None:
        dead = create_rate_limit_redis(DEAD_URL, timeout=0.1)
        limiter = RateLimiter(RedisRateLimitStore(dead), key_prefix=prefix, timeout=0.2)
        rules = unique_rules("1/hour")
        try:
            started = time.monotonic()
            results = await hits(limiter, rules, 3)
            elapsed = time.monotonic() - started
        finally:
            await dead.aclose()
        assert all(d.allowed and d.error and not d.quotas for d in results)
        assert metric(rules[0].name, "error") == 3
        assert events(json_log).count("rate-limit store unavailable") == 1  # once, not per request
        assert elapsed < 2.0  # bounded by the timeout, with a wide margin for a busy machine

    async def test_redis_down_fails_closed_with_503_when_configured(self) -> None:
        dead = create_rate_limit_redis(DEAD_URL, timeout=0.1)
        limiter = RateLimiter(RedisRateLimitStore(dead), fail_open=False, breaker_seconds=5.0)
        try:
            async with http_client(limiter, parse_rules("100/hour")) as client:
                response = await client.get("/items/1")
        finally:
            await dead.aclose()
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert 1 <= int(response.headers["retry-after"]) <= 5
        assert "ratelimit" not in response.headers

    @pytest.mark.slow
    @pytest.mark.parametrize("fail_open", [True, False])
    async def test_paused_redis_trips_the_breaker_and_limits_resume(
        self,
        service_urls: ServiceUrls,
        admin: Redis,
        prefix: str,
        client_name: str,
        fail_open: bool,
    ) -> None:
        redis = create_rate_limit_redis(service_urls.redis, timeout=0.05, client_name=client_name)
        limiter = RateLimiter(
            RedisRateLimitStore(redis),
            key_prefix=prefix,
            fail_open=fail_open,
            timeout=0.1,
            breaker_seconds=3.0,
        )
        rules = unique_rules("5/hour")
        try:
            assert (await limiter.check(CLIENT, BUCKET, rules)).allowed  # warm: script loaded
            # WRITE pauses scripts only, and only for the moment this test needs.
            await admin.client_pause(5000, all=False)
            try:
                started = time.monotonic()
                stalled = await hits(limiter, rules, limiter.failure_threshold)
                elapsed = time.monotonic() - started
            finally:
                await admin.client_unpause()
            assert all(d.error and d.allowed is fail_open for d in stalled)
            assert elapsed < 4.0  # three timeouts, not three 5 s stalls
            # Redis is back, but the breaker keeps the limiter off it for a few seconds.
            assert (await limiter.check(CLIENT, BUCKET, rules)).error
            await asyncio.sleep(3.2)
            resumed = await hits(limiter, rules, 6)
        finally:
            await redis.aclose()
        assert not any(d.error for d in resumed)
        # The stalled calls may have run once Redis resumed; either way the limit holds again.
        assert 1 <= sum(d.allowed for d in resumed) <= 4
        assert not resumed[-1].allowed
        assert metric(rules[0].name, "error") == limiter.failure_threshold + 1

    async def test_one_failure_follows_the_policy_without_opening_the_breaker(
        self, service_urls: ServiceUrls, admin: Redis, prefix: str, client_name: str
    ) -> None:
        redis = create_rate_limit_redis(service_urls.redis, timeout=0.05, client_name=client_name)
        limiter = RateLimiter(RedisRateLimitStore(redis), key_prefix=prefix, timeout=0.1)
        rules = unique_rules("5/hour")
        try:
            assert (await limiter.check(CLIENT, BUCKET, rules)).allowed  # warm: script loaded
            await admin.client_pause(2000, all=False)
            try:
                stalled = await limiter.check(CLIENT, BUCKET, rules)
            finally:
                await admin.client_unpause()
            after = await limiter.check(CLIENT, BUCKET, rules)
        finally:
            await redis.aclose()
        assert stalled.error
        # The next check asks Redis again: a slow moment does not switch the limits off.
        assert not after.error
        assert after.quotas


class TestEvictionPolicy:
    async def test_allkeys_policies_warn_or_refuse(
        self, redis: Redis, admin: Redis, json_log: io.StringIO
    ) -> None:
        [original] = (await admin.config_get("maxmemory-policy")).values()
        assert isinstance(original, str | bytes)
        try:
            await admin.config_set("maxmemory-policy", "allkeys-lru")
            assert await check_eviction_policy(redis, refuse=False) == "allkeys-lru"
            assert "unsafe rate-limit Redis eviction policy" in events(json_log)
            with pytest.raises(UnsafeEvictionPolicyError, match="allkeys-lru"):
                await check_eviction_policy(redis, refuse=True)
            await admin.config_set("maxmemory-policy", "volatile-lru")
            assert await check_eviction_policy(redis, refuse=True) == "volatile-lru"
        finally:
            await admin.config_set("maxmemory-policy", original)


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


@asynccontextmanager
async def http_client(limiter: RateLimiter, rules: tuple[Rule, ...]) -> AsyncIterator[AsyncClient]:
    router = Router(routes=[Route("/items/{item_id}", ok), Route("/health/live", ok)])
    app = RateLimitMiddleware(router, limiter=limiter, default_rules=rules, routes=router.routes)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def revocation(request: Request) -> JSONResponse:
    return JSONResponse({"revoked": known_revocation(request.scope)})


class TestMiddleware:
    async def test_headers_429_and_retry_after_from_one_result(self, limiter: RateLimiter) -> None:
        async with http_client(limiter, parse_rules("2/4seconds")) as client:
            first, second, refused = [await client.get(f"/items/{n}") for n in range(3)]
            await asyncio.sleep(int(refused.headers["retry-after"]))
            after_wait = await client.get("/items/9")
        assert [first.status_code, second.status_code] == [200, 200]
        assert [r.headers["x-ratelimit-remaining"] for r in (first, second)] == ["1", "0"]
        assert first.headers["ratelimit-policy"] == '"default";q=2;w=4'
        assert first.headers["ratelimit"] == '"default";r=1;t=2'
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.json()["status"] == 429
        retry_after = int(refused.headers["retry-after"])
        assert retry_after >= 1
        assert refused.headers["ratelimit"] == f'"default";r=0;t={retry_after}'
        assert after_wait.status_code == 200

    async def test_exactly_one_evalsha_per_limited_request(
        self, limiter: RateLimiter, admin: Redis, client_name: str
    ) -> None:
        async with http_client(limiter, parse_rules("5/hour")) as client:
            await client.get("/items/0")  # connects and loads the script
            log = CommandLog(admin, client_name)
            async with log.recording():
                statuses = [(await client.get(f"/items/{n}")).status_code for n in range(20)]
                for _ in range(5):
                    await client.get("/health/live")  # exempt: no Redis at all
        assert statuses == [200] * 4 + [429] * 16
        commands = await log.commands()
        # A SCRIPT FLUSH by another user of this Redis makes the next call reload with EVAL.
        assert [command for command in commands if command != "EVAL"] == ["EVALSHA"] * 20
        assert all(
            commands[index - 1] == "EVALSHA"
            for index, command in enumerate(commands)
            if command == "EVAL"
        )

    async def test_the_revocation_check_rides_in_the_same_round_trip(
        self, limiter: RateLimiter, redis: Redis, admin: Redis, client_name: str, prefix: str
    ) -> None:
        revoked_key = f"{prefix}revoked:token-1"
        await redis.set(revoked_key, 1, ex=60)
        router = Router(routes=[Route("/me", revocation)])
        app = RateLimitMiddleware(
            router,
            limiter=limiter,
            default_rules=parse_rules("100/hour"),
            routes=router.routes,
            # Odd requests present the revoked token, even ones another.
            revocation_key=lambda scope: f"{prefix}revoked:token-{scope['query_string'].decode()}",
        )
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            await client.get("/me?0")  # connects and loads the script
            log = CommandLog(admin, client_name)
            async with log.recording():
                answers = [(await client.get(f"/me?{n % 2}")).json() for n in range(10)]

        assert answers == [{"revoked": n % 2 == 1} for n in range(10)]
        # Each request: its EVALSHA and the EXISTS written together on one connection.
        mine = [entry for entry in await log.entries() if entry[1] != "EVAL"]
        assert [name for _, name in mine] == ["EVALSHA", "EXISTS"] * 10
        assert all(mine[i][0] == mine[i + 1][0] for i in range(0, 20, 2))

    async def test_without_a_revocation_key_nothing_rides_along(self, limiter: RateLimiter) -> None:
        router = Router(routes=[Route("/me", revocation)])
        app = RateLimitMiddleware(
            router,
            limiter=limiter,
            default_rules=parse_rules("100/hour"),
            routes=router.routes,
            revocation_key=lambda _: None,
        )
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/me")).json() == {"revoked": None}
