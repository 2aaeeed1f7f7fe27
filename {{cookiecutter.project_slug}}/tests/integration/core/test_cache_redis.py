"""The cache over real Redis: one round trip per hit, tags, the stale-set race, the lock across
processes, and faults (dead port, CLIENT PAUSE, corrupt values) that never fail a call.

Pausing and command counting use a private `redis-server` started on a free port, so the shared
Redis is never paused and other users' commands never disturb the counts.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, TypeAdapter
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from {{ cookiecutter.project_slug }}.core.cache import Cache
from {{ cookiecutter.project_slug }}.core.cache_redis import RedisCacheStore, create_cache_redis
from tests.processes import free_port
from tests.services import ServiceUrls

DEAD_URL = "redis://127.0.0.1:1"


class Thing(BaseModel):
    name: str


THING = TypeAdapter(Thing)


def errors() -> float:
    return REGISTRY.get_sample_value("cache_requests_total", {"result": "error"}) or 0.0


class Counted:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> Thing:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return Thing(name=f"computed-{self.calls}")


@pytest.fixture(scope="module")
def private_redis_url() -> Iterator[str]:
    """A Redis of this module's own, without persistence, removed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH; these fault tests start their own", pytrace=False)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            SyncRedis.from_url(url, socket_timeout=1).ping()
            break
        except RedisError:
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def redis_cache(
    url: str, *, key_prefix: str | None = None, wait_seconds: float = 0.5
) -> AsyncIterator[Cache]:
    """A cache with a client of its own under a fresh prefix; its keys are removed after."""
    redis = create_cache_redis(url)
    cache = Cache(
        RedisCacheStore(redis),
        key_prefix=key_prefix or f"test-cache-{uuid.uuid4().hex[:8]}:",
        wait_seconds=wait_seconds,
    )
    try:
        yield cache
    finally:
        if url != DEAD_URL:
            keys = [key async for key in redis.scan_iter(match=f"{cache.key_prefix}*")]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()


@pytest.fixture
async def cache(service_urls: ServiceUrls) -> AsyncIterator[Cache]:
    async with redis_cache(service_urls.redis) as cache:
        yield cache


def redis_of(cache: Cache) -> Redis:
    assert isinstance(cache.store, RedisCacheStore)
    return cache.store.redis


class TestOnRedis:
    async def test_set_get_delete_and_expiry(self, cache: Cache) -> None:
        await cache.set("k", Thing(name="a"), THING)
        await cache.set("short", Thing(name="b"), THING, ttl=0.2)
        assert await cache.get("k", THING) == Thing(name="a")

        await cache.delete("k")
        assert await cache.get("k", THING) is None
        await asyncio.sleep(0.5)
        assert await cache.get("short", THING) is None

    async def test_every_key_is_namespaced_and_expires(self, cache: Cache) -> None:
        await cache.get_or_set("k", Counted(), THING, tags=["t"])
        redis = redis_of(cache)

        keys = [key async for key in redis.scan_iter(match=f"{cache.key_prefix}*")]

        assert len(keys) == 2  # the entry and its tag; the lock went with the store
        assert all(key.startswith(f"{cache.key_prefix}cache:v1:".encode()) for key in keys)
        assert all([await redis.pttl(key) > 0 for key in keys])

    async def test_tags_and_the_stale_set_race(self, cache: Cache) -> None:
        async def read_old_row_while_it_changes() -> Thing:
            await cache.invalidate_tags("item:1")
            return Thing(name="old")

        await cache.get_or_set("item", read_old_row_while_it_changes, THING, tags=["item:1"])
        assert await cache.get("item", THING, tags=["item:1"]) is None

        await cache.get_or_set("item", Counted(), THING, tags=["item:1"])
        assert await cache.get("item", THING, tags=["item:1"]) == Thing(name="computed-1")
        await cache.invalidate_tags("item:1")
        assert await cache.get("item", THING, tags=["item:1"]) is None

    async def test_two_processes_missing_together_compute_once(
        self, service_urls: ServiceUrls
    ) -> None:
        # Two caches with their own clients and single flights stand for two processes.
        compute = Counted(delay=0.5)
        async with (
            redis_cache(service_urls.redis, wait_seconds=30) as first,
            redis_cache(service_urls.redis, key_prefix=first.key_prefix, wait_seconds=30) as second,
        ):
            results = await asyncio.gather(
                first.get_or_set("k", compute, THING, tags=["t"]),
                second.get_or_set("k", compute, THING, tags=["t"]),
            )

        assert compute.calls == 1
        assert results[0] == results[1] == Thing(name="computed-1")

    async def test_a_waiter_computes_anyway_when_the_holder_takes_too_long(
        self, service_urls: ServiceUrls
    ) -> None:
        slow, quick = Counted(delay=2.0), Counted()
        async with (
            redis_cache(service_urls.redis) as first,
            redis_cache(
                service_urls.redis, key_prefix=first.key_prefix, wait_seconds=0.1
            ) as second,
        ):
            holder = asyncio.create_task(first.get_or_set("k", slow, THING))
            await asyncio.sleep(0.2)
            waited = await second.get_or_set("k", quick, THING)
            await holder

        assert quick.calls == 1
        assert waited == Thing(name="computed-1")


class TestFaults:
    async def test_a_dead_redis_reads_through(self) -> None:
        compute = Counted()
        before = errors()
        async with redis_cache(DEAD_URL) as cache:
            first = await cache.get_or_set("k", compute, THING, tags=["t"])
            second = await cache.get_or_set("k", compute, THING, tags=["t"])
            await cache.invalidate_tags("t")
            await cache.set("k", Thing(name="x"), THING)
            await cache.delete("k")
            assert await cache.get("k", THING) is None

        assert (first.name, second.name) == ("computed-1", "computed-2")
        assert errors() == before + 4

    async def test_a_paused_redis_costs_a_timeout_then_reads_through(
        self, private_redis_url: str
    ) -> None:
        admin = Redis.from_url(private_redis_url)
        async with redis_cache(private_redis_url) as cache:
            await cache.get_or_set("k", Counted(), THING)
            before = errors()
            try:
                await admin.client_pause(3000, all=True)
                started = time.monotonic()
                value = await cache.get_or_set("k", Counted(), THING)
                elapsed = time.monotonic() - started
            finally:
                await admin.client_unpause()
                await admin.aclose()

        assert value == Thing(name="computed-1")
        assert errors() == before + 1
        # Well under the pause: the cache gave up on Redis instead of waiting it out.
        assert elapsed < 2.5

    async def test_corrupt_values_are_replaced(self, cache: Cache) -> None:
        await cache.set("k", Thing(name="a"), THING)
        key = f"{cache.key_prefix}cache:v1:k"
        before = errors()

        for garbage in (b"garbage", b'\n{"name": []}', b"\n\xff"):
            await redis_of(cache).set(key, garbage)
            assert await cache.get_or_set("k", Counted(), THING) == Thing(name="computed-1")
            assert await cache.get("k", THING) == Thing(name="computed-1")

        assert errors() == before + 3

    async def test_a_hit_is_one_round_trip(self, private_redis_url: str) -> None:
        admin = SyncRedis.from_url(private_redis_url)
        async with redis_cache(private_redis_url) as cache:
            await cache.get_or_set("k", Counted(), THING, tags=["a", "b"])
            admin.config_resetstat()

            assert await cache.get_or_set("k", Counted(), THING, tags=["a", "b"]) is not None

            stats = admin.info("commandstats")
        admin.close()
        commands = {
            name: value["calls"]
            for name, value in stats.items()
            if name not in {"cmdstat_info", "cmdstat_config|resetstat"}
        }
        assert commands == {"cmdstat_mget": 1}
