"""The cache over the in-process and null stores: values, TTLs, the bound, tags, the stale-set
race, single flight, corrupt entries and the decorator. The Redis store has its own tests."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, TypeAdapter

from {{ cookiecutter.project_slug }}.core.cache import (
    Cache,
    MemoryCacheStore,
    NullCacheStore,
    cached,
)
from {{ cookiecutter.project_slug }}.core.config import ConfigurationError, load_settings


class Thing(BaseModel):
    name: str
    size: int


THING = TypeAdapter(Thing)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def requests(result: str) -> float:
    return REGISTRY.get_sample_value("cache_requests_total", {"result": result}) or 0.0


class Counted:
    """A computation that counts its calls and returns a new Thing each time."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> Thing:
        self.calls += 1
        call = self.calls
        await asyncio.sleep(self.delay)
        return Thing(name=f"computed-{call}", size=call)


class TestValues:
    async def test_set_get_delete(self) -> None:
        cache = Cache(MemoryCacheStore())

        assert await cache.get("k", THING) is None
        await cache.set("k", Thing(name="a", size=1), THING)
        assert await cache.get("k", THING) == Thing(name="a", size=1)
        await cache.delete("k")
        assert await cache.get("k", THING) is None

    async def test_entries_expire_after_their_ttl(self) -> None:
        clock = Clock()
        cache = Cache(MemoryCacheStore(clock=clock), default_ttl=60)
        await cache.set("short", Thing(name="a", size=1), THING, ttl=5)
        await cache.set("default", Thing(name="b", size=2), THING)

        clock.now += 6
        assert await cache.get("short", THING) is None
        assert await cache.get("default", THING) is not None
        clock.now += 60
        assert await cache.get("default", THING) is None

    async def test_the_in_process_store_keeps_the_most_recently_used(self) -> None:
        store = MemoryCacheStore(max_entries=2)
        cache = Cache(store)
        await cache.set("a", Thing(name="a", size=1), THING)
        await cache.set("b", Thing(name="b", size=2), THING)
        assert await cache.get("a", THING) is not None  # `a` is now the most recent
        await cache.set("c", Thing(name="c", size=3), THING)

        assert len(store) == 2
        assert await cache.get("b", THING) is None
        assert await cache.get("a", THING) is not None

    async def test_get_or_set_computes_once_then_hits(self) -> None:
        cache = Cache(MemoryCacheStore())
        compute = Counted()
        hits, misses = requests("hit"), requests("miss")

        first = await cache.get_or_set("k", compute, THING)
        second = await cache.get_or_set("k", compute, THING)

        assert first == second == Thing(name="computed-1", size=1)
        assert compute.calls == 1
        assert requests("miss") == misses + 1
        assert requests("hit") == hits + 1

    async def test_the_null_store_always_computes(self) -> None:
        cache = Cache(NullCacheStore())
        compute = Counted()

        await cache.get_or_set("k", compute, THING, tags=["t"])
        await cache.set("k", Thing(name="x", size=0), THING)
        await cache.get_or_set("k", compute, THING, tags=["t"])

        assert compute.calls == 2
        assert await cache.get("k", THING) is None

    async def test_exceptions_are_not_cached(self) -> None:
        cache = Cache(MemoryCacheStore())
        calls = 0

        async def missing() -> Thing:
            nonlocal calls
            calls += 1
            raise LookupError("no such thing")

        for _ in range(2):
            with pytest.raises(LookupError):
                await cache.get_or_set("k", missing, THING)
        assert calls == 2


class TestTags:
    async def test_invalidating_a_tag_misses_every_entry_tagged_with_it(self) -> None:
        cache = Cache(MemoryCacheStore())
        compute = Counted()
        await cache.get_or_set("a", compute, THING, tags=["item:1", "owner:9"])
        await cache.get_or_set("b", compute, THING, tags=["owner:9"])
        await cache.get_or_set("c", compute, THING, tags=["item:2"])

        await cache.invalidate_tags("owner:9")

        assert await cache.get("a", THING, tags=["item:1", "owner:9"]) is None
        assert await cache.get("b", THING, tags=["owner:9"]) is None
        assert await cache.get("c", THING, tags=["item:2"]) is not None

    async def test_a_value_read_before_an_invalidation_is_never_served_after_it(self) -> None:
        # The stale-set race: a reader misses and reads the old row; a writer commits and
        # invalidates; only then does the reader store what it read.
        cache = Cache(MemoryCacheStore())

        async def read_old_row_while_it_changes() -> Thing:
            await cache.invalidate_tags("item:1")  # the writer's commit lands here
            return Thing(name="old", size=1)

        stored = await cache.get_or_set(
            "item", read_old_row_while_it_changes, THING, tags=["item:1"]
        )
        assert stored.name == "old"  # the reader itself answers with what it read

        fresh = await cache.get_or_set(
            "item", lambda: asyncio.sleep(0, Thing(name="new", size=2)), THING, tags=["item:1"]
        )
        assert fresh.name == "new"

    async def test_an_evicted_tag_turns_its_entries_into_misses(self) -> None:
        store = MemoryCacheStore()
        cache = Cache(store)
        await cache.get_or_set("k", Counted(), THING, tags=["t"])
        await store.delete([key for key in list(store._entries) if key.endswith("tag:t")])

        assert await cache.get("k", THING, tags=["t"]) is None


class TestStampede:
    async def test_concurrent_misses_compute_once(self) -> None:
        cache = Cache(MemoryCacheStore())
        compute = Counted(delay=0.05)

        results = await asyncio.gather(*(cache.get_or_set("k", compute, THING) for _ in range(20)))

        assert compute.calls == 1
        assert {result.name for result in results} == {"computed-1"}
        # Each caller gets its own copy: changing one cannot change another's.
        assert len({id(result) for result in results}) == 20

    async def test_a_computation_begun_before_an_invalidation_is_not_shared_after_it(
        self,
    ) -> None:
        cache = Cache(MemoryCacheStore())
        compute = Counted(delay=0.2)
        reading_old_row = asyncio.create_task(cache.get_or_set("k", compute, THING, tags=["t"]))
        await asyncio.sleep(0.05)

        await cache.invalidate_tags("t")  # a change commits while the old row is being read
        after_the_change = await cache.get_or_set("k", compute, THING, tags=["t"])

        assert after_the_change.name == "computed-2"
        assert (await reading_old_row).name == "computed-1"
        assert compute.calls == 2

    async def test_waiters_share_the_failure_of_the_computation(self) -> None:
        cache = Cache(MemoryCacheStore())
        calls = 0

        async def failing() -> Thing:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            raise LookupError("gone")

        outcomes = await asyncio.gather(
            *(cache.get_or_set("k", failing, THING) for _ in range(5)), return_exceptions=True
        )

        assert calls == 1
        assert all(isinstance(outcome, LookupError) for outcome in outcomes)

    async def test_a_cancelled_computation_leaves_the_waiters_to_compute(self) -> None:
        cache = Cache(MemoryCacheStore())
        compute = Counted(delay=0.2)
        leader = asyncio.create_task(cache.get_or_set("k", compute, THING))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(cache.get_or_set("k", compute, THING))
        await asyncio.sleep(0.05)

        leader.cancel()

        assert (await waiter).name == "computed-2"
        with pytest.raises(asyncio.CancelledError):
            await leader


class TestCorruptEntries:
    async def test_a_corrupt_entry_is_read_through_counted_and_replaced(self) -> None:
        store = MemoryCacheStore()
        cache = Cache(store)
        await cache.set("k", Thing(name="a", size=1), THING)
        (key,) = list(store._entries)
        errors = requests("error")

        for garbage in (b"no header at all", b'\n{"name": 1}', b"\n\xff\xfe"):
            await store.set(key, garbage, 60)
            value = await cache.get_or_set("k", Counted(), THING)
            assert value.name == "computed-1"
            assert await cache.get("k", THING) == value  # replaced by the computed value

        assert requests("error") == errors + 3


class Catalogue:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.loads: list[int] = []

    @cached(
        Thing,
        key=lambda thing_id: f"thing:v1:{thing_id}",
        tags=lambda thing_id: [f"t:{thing_id}"],
    )
    async def thing(self, thing_id: int) -> Thing:
        self.loads.append(thing_id)
        return Thing(name=f"thing {thing_id}", size=len(self.loads))


class TestDecorator:
    async def test_keys_come_from_the_arguments(self) -> None:
        catalogue = Catalogue(Cache(MemoryCacheStore()))

        assert (await catalogue.thing(1)).name == "thing 1"
        assert (await catalogue.thing(1)).name == "thing 1"
        assert (await catalogue.thing(thing_id=2)).name == "thing 2"
        assert catalogue.loads == [1, 2]

    async def test_invalidating_the_tag_reloads(self) -> None:
        catalogue = Catalogue(Cache(MemoryCacheStore()))
        await catalogue.thing(1)

        await catalogue.cache.invalidate_tags("t:1")
        reloaded = await catalogue.thing(1)

        assert catalogue.loads == [1, 1]
        assert reloaded.size == 2


def test_the_redis_backend_needs_a_redis_url() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_BACKEND=redis needs REDIS_URL"):
        load_settings(cache_backend="redis", redis_url=None)
