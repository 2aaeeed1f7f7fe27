"""Rule parsing, the GCRA step, and the in-process store, on a clock the tests move by hand."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid

import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    InMemoryRateLimitStore,
    RateLimiter,
    Rule,
    RuleSpecError,
    bucket_key,
    parse_rules,
)
from {{ cookiecutter.project_slug }}.main import create_app
from tests.conftest import make_settings

SECOND = 1_000_000


class Clock:
    """Microseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * SECOND)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(InMemoryRateLimitStore(clock=clock))


def decisions(name: str, decision: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "rate_limit_decisions_total", {"rule": name, "decision": decision}
        )
        or 0.0
    )


class TestParseRules:
    @pytest.mark.parametrize(
        ("spec", "limit", "period"),
        [
            ("100/minute", 100, 60),
            ("10/second", 10, 1),
            ("1000/hour", 1000, 3600),
            ("5/15minutes", 5, 900),
            ("5 / 15 minutes", 5, 900),
            ("2/day", 2, 86400),
            ("7/Minutes", 7, 60),
        ],
    )
    def test_a_rate_becomes_a_rule(self, spec: str, limit: int, period: float) -> None:
        assert parse_rules(spec, "auth") == (Rule(limit, period, "auth"),)

    def test_several_rules_get_a_name_each(self) -> None:
        rules = parse_rules("10/second; 500/hour", "default")
        assert [(r.limit, r.period, r.name) for r in rules] == [
            (10, 1, "default-1s"),
            (500, 3600, "default-3600s"),
        ]

    @pytest.mark.parametrize(
        "spec", ["", "100", "100/fortnight", "0/minute", "10/0minutes", "-1/second", "ten/second"]
    )
    def test_a_bad_rate_is_refused_with_the_expected_form(self, spec: str) -> None:
        with pytest.raises(RuleSpecError, match=r"rule|rate|at least 1"):
            parse_rules(spec)

    def test_two_rules_with_one_period_are_refused(self) -> None:
        with pytest.raises(RuleSpecError, match="share a period"):
            parse_rules("10/minute;20/minute")

    def test_the_interval_is_rounded_up_so_the_burst_is_exactly_the_limit(self) -> None:
        rule = Rule(7, 60)
        assert rule.interval_us == 8_571_429
        assert rule.tolerance_us == 7 * rule.interval_us >= 60 * SECOND


class TestKeys:
    def test_keys_are_namespaced_by_algorithm_version_rule_and_bucket(self) -> None:
        key = bucket_key("svc:", "ip:192.0.2.1", "GET /items/{item_id}", Rule(5, 60, "default"))
        assert key == (
            "svc:rl:gcra:v1:{ip%3A192.0.2.1}:default:5/60000000us:GET%20%2Fitems%2F%7Bitem_id%7D"
        )

    def test_identities_with_separators_do_not_collide(self) -> None:
        rule = Rule(5, 60)
        assert bucket_key("", "a/b", "c", rule) != bucket_key("", "a", "b/c", rule)
        assert bucket_key("", "a}:x", "c", rule) != bucket_key("", "a", "}:xc", rule)


class TestInMemoryGcra:
    async def test_exactly_the_limit_is_admitted_at_once(self, limiter: RateLimiter) -> None:
        rules = parse_rules("5/minute")
        results = [await limiter.check("c", "b", rules) for _ in range(8)]
        assert [d.allowed for d in results] == [True] * 5 + [False] * 3
        assert [d.quotas[0].remaining for d in results[:5]] == [4, 3, 2, 1, 0]
        assert results[-1].retry_after == pytest.approx(12.0)

    async def test_rejected_hits_cost_nothing(self, limiter: RateLimiter, clock: Clock) -> None:
        rules = (Rule(10, 60),)
        assert (await limiter.check("c", "b", rules, cost=5)).allowed
        refused = await limiter.check("c", "b", rules, cost=10)
        assert not refused.allowed
        assert refused.quotas[0].remaining == 5  # the refused hit took nothing
        admitted = await limiter.check("c", "b", rules, cost=5)
        assert admitted.allowed
        assert admitted.quotas[0].remaining == 0
        for _ in range(20):
            await limiter.check("c", "b", rules)  # hammering while throttled
        clock.advance(6)  # one interval: exactly one request's worth is back
        assert (await limiter.check("c", "b", rules)).allowed

    async def test_waiting_retry_after_is_enough(self, limiter: RateLimiter, clock: Clock) -> None:
        rules = parse_rules("3/10seconds")
        for _ in range(3):
            await limiter.check("c", "b", rules)
        refused = await limiter.check("c", "b", rules)
        assert refused.retry_after_seconds == 4  # 3.33 s rounded up, never early
        clock.advance(refused.retry_after_seconds)
        assert (await limiter.check("c", "b", rules)).allowed

    async def test_several_rules_are_all_or_nothing(self, limiter: RateLimiter) -> None:
        rules = (Rule(100, 60, "minute"), Rule(3, 86400, "day"))
        results = [await limiter.check("c", "b", rules) for _ in range(10)]
        assert sum(d.allowed for d in results) == 3
        minute, day = results[-1].quotas
        assert minute.remaining == 97  # the 7 refused requests were not charged to it
        assert day.remaining == 0
        assert results[-1].binding == day

    async def test_a_boundary_burst_stays_within_limit_plus_refill(
        self, limiter: RateLimiter, clock: Clock
    ) -> None:
        # There is no window edge: after a full burst, 50 ms later only what refilled passes.
        rules = parse_rules("100/minute")
        first = [await limiter.check("c", "b", rules) for _ in range(150)]
        clock.advance(0.05)
        second = [await limiter.check("c", "b", rules) for _ in range(150)]
        assert sum(d.allowed for d in first) == 100
        assert sum(d.allowed for d in second) == 0  # 50 ms refills 0.083 of a request
        clock.advance(1.2)  # two intervals (0.6 s each)
        third = [await limiter.check("c", "b", rules) for _ in range(150)]
        assert sum(d.allowed for d in third) == 2

    async def test_remaining_never_increases_within_a_burst(self, limiter: RateLimiter) -> None:
        rules = parse_rules("20/hour")
        seen = [(await limiter.check("c", "b", rules)).quotas[0].remaining for _ in range(30)]
        assert seen == sorted(seen, reverse=True)
        assert seen[-1] == 0

    async def test_clients_and_buckets_are_independent(self, limiter: RateLimiter) -> None:
        rules = parse_rules("1/minute")
        assert (await limiter.check("a", "GET /x", rules)).allowed
        assert (await limiter.check("b", "GET /x", rules)).allowed
        assert (await limiter.check("a", "GET /y", rules)).allowed
        assert not (await limiter.check("a", "GET /x", rules)).allowed

    async def test_reset_epoch_is_wall_time_plus_the_wait(self, limiter: RateLimiter) -> None:
        rules = parse_rules("2/minute")
        decision = await limiter.check("c", "b", rules)
        assert decision.reset_epoch is not None
        assert decision.reset_epoch - time.time() == pytest.approx(30, abs=1)

    async def test_metrics_count_each_rule_decision(self, limiter: RateLimiter) -> None:
        name = f"m{uuid.uuid4().hex[:8]}"
        rules = (Rule(2, 60, name), Rule(100, 60, name + "-wide"))
        for _ in range(3):
            await limiter.check("c", "b", rules)
        assert decisions(name, "allowed") == 2
        assert decisions(name, "limited") == 1
        assert decisions(name + "-wide", "limited") == 0  # it did not refuse


class TestInMemoryBounds:
    async def test_memory_stays_bounded_for_100k_clients(self, clock: Clock) -> None:
        store = InMemoryRateLimitStore(max_keys=1000, clock=clock)
        limiter = RateLimiter(store)
        rules = parse_rules("5/minute")
        for client in range(100_000):
            await limiter.check(f"ip:{client}", "b", rules)
        assert len(store) <= 1000

    async def test_whole_buckets_are_dropped(self, clock: Clock) -> None:
        store = InMemoryRateLimitStore(clock=clock)
        limiter = RateLimiter(store)
        rules = parse_rules("5/second")
        for client in range(100):
            await limiter.check(f"ip:{client}", "b", rules)
        clock.advance(1)
        for _ in range(60):
            await limiter.check("ip:other", "b", rules)
        assert len(store) < 100  # a couple of stale buckets go with every check


async def test_an_app_without_redis_says_limits_are_per_process() -> None:
    settings = make_settings(
        database_url="sqlite+aiosqlite:///:memory:", log_level="INFO", log_format="json"
    )
    app = create_app(settings)  # configures logging: capture its output from here on
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        async with LifespanManager(app):
            pass
    finally:
        configure_logging("WARNING", "console")
    events = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert any(e["event"] == "rate limits are per process" for e in events)


async def test_a_cost_above_the_limit_is_a_programming_error(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="could never pass"):
        await limiter.check("c", "b", parse_rules("5/minute"), cost=6)
