"""Flag rules (global switch, allow list, deterministic rollout) and the process's flag cache."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

from {{ cookiecutter.project_slug }}.core.feature_flags import (
    BUCKETS,
    FlagCache,
    FlagRule,
    rollout_bucket,
)

USERS = [uuid.uuid5(uuid.NAMESPACE_URL, f"user-{number}") for number in range(10_000)]


def rule(
    *, enabled: bool = True, percent: float = 0, allowed: frozenset[str] = frozenset()
) -> FlagRule:
    return FlagRule(
        name="new-checkout",
        enabled=enabled,
        rollout_basis_points=round(percent * BUCKETS / 100),
        allowed_user_ids=allowed,
    )


def included(flag: FlagRule) -> set[uuid.UUID]:
    return {user for user in USERS if flag.applies_to(user)}


class TestRollout:
    def test_thirty_percent_lands_within_three_points_over_ten_thousand_users(self) -> None:
        share = len(included(rule(percent=30))) / len(USERS)

        assert 0.27 <= share <= 0.33

    def test_each_user_keeps_their_answer(self) -> None:
        # A new rule object stands in for another request or another process.
        assert included(rule(percent=30)) == included(rule(percent=30))

    def test_raising_the_percentage_only_adds_users(self) -> None:
        assert included(rule(percent=30)) < included(rule(percent=50))

    def test_each_flag_picks_its_own_users(self) -> None:
        other = FlagRule("other-flag", True, 3000, frozenset())

        assert included(rule(percent=30)) != included(other)

    def test_buckets_cover_the_whole_range(self) -> None:
        buckets = {rollout_bucket("new-checkout", user) for user in USERS}

        assert min(buckets) < 50
        assert max(buckets) > BUCKETS - 50

    def test_zero_and_hundred_percent(self) -> None:
        assert included(rule(percent=0)) == set()
        assert included(rule(percent=100)) == set(USERS)


class TestTargetingAndSwitch:
    def test_an_allowed_user_gets_the_feature_at_zero_percent(self) -> None:
        allowed, other = USERS[0], USERS[1]
        flag = rule(percent=0, allowed=frozenset({str(allowed)}))

        assert flag.applies_to(allowed)
        assert not flag.applies_to(other)

    def test_switched_off_means_off_for_everyone(self) -> None:
        flag = rule(enabled=False, percent=100, allowed=frozenset({str(USERS[0])}))

        assert included(flag) == set()
        assert not flag.applies_to(None)

    def test_anonymous_callers_get_a_feature_only_when_it_is_on_for_everyone(self) -> None:
        assert not rule(percent=99.99).applies_to(None)
        assert rule(percent=100).applies_to(None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads; each returns a snapshot naming how many loads came before it."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> Mapping[str, FlagRule]:
        self.calls += 1
        generation = self.calls
        await self.release.wait()
        return {f"load-{generation}": rule()}


class TestFlagCache:
    async def test_reuses_a_snapshot_until_the_ttl_passes(self) -> None:
        clock, load = Clock(), Loader()
        cache = FlagCache(10, clock=clock)

        first = await cache.rules(load)
        clock.now = 9.9
        again = await cache.rules(load)
        clock.now = 10.0
        later = await cache.rules(load)

        assert list(first) == list(again) == ["load-1"]
        assert list(later) == ["load-2"]

    async def test_invalidate_reloads_at_once(self) -> None:
        load = Loader()
        cache = FlagCache(3600, clock=Clock())
        await cache.rules(load)

        cache.invalidate()

        assert list(await cache.rules(load)) == ["load-2"]

    async def test_concurrent_misses_load_once(self) -> None:
        load = Loader()
        load.release.clear()
        cache = FlagCache(10, clock=Clock())

        waiting = [asyncio.create_task(cache.rules(load)) for _ in range(10)]
        await asyncio.sleep(0)
        load.release.set()
        results = await asyncio.gather(*waiting)

        assert load.calls == 1
        assert all(list(result) == ["load-1"] for result in results)

    async def test_a_load_overtaken_by_invalidate_is_not_kept(self) -> None:
        load = Loader()
        load.release.clear()
        cache = FlagCache(3600, clock=Clock())

        loading = asyncio.create_task(cache.rules(load))
        await asyncio.sleep(0)
        cache.invalidate()  # a change committed while the old snapshot was being read
        load.release.set()
        await loading

        assert list(await cache.rules(load)) == ["load-2"]

    async def test_a_zero_ttl_never_caches(self) -> None:
        load = Loader()
        cache = FlagCache(0, clock=Clock())

        await cache.rules(load)
        await cache.rules(load)

        assert load.calls == 2
