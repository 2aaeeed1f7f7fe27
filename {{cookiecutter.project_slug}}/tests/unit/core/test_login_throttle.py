"""The login throttle's policy over the in-process attempt store."""

from __future__ import annotations

import pytest

from {{ cookiecutter.project_slug }}.core.errors import RateLimitedError
from {{ cookiecutter.project_slug }}.core.login_throttle import InMemoryAttemptStore, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(
    clock: Clock, *, max_failures: int = 5, max_failures_per_client: int = 5
) -> LoginThrottle:
    return LoginThrottle(
        InMemoryAttemptStore(clock=clock),
        max_failures=max_failures,
        max_failures_per_client=max_failures_per_client,
        window_seconds=900,
    )


async def test_the_limit_applies_after_the_fifth_failure() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(4):
        await limiter.failed("a@example.com", "10.0.0.1")
    await limiter.check("a@example.com", "10.0.0.1")
    await limiter.failed("a@example.com", "10.0.0.1")

    with pytest.raises(RateLimitedError) as refused:
        await limiter.check("A@Example.com", "10.0.0.2")

    assert refused.value.retry_after == 900


async def test_the_window_runs_from_the_first_failure() -> None:
    clock = Clock()
    limiter = throttle(clock)
    for _ in range(5):
        await limiter.failed("a@example.com", "10.0.0.1")
        clock.now += 100

    with pytest.raises(RateLimitedError) as refused:
        await limiter.check("a@example.com", "10.0.0.1")
    assert refused.value.retry_after == 400

    clock.now += 400
    await limiter.check("a@example.com", "10.0.0.1")


async def test_a_client_is_limited_across_accounts() -> None:
    limiter = throttle(Clock(), max_failures_per_client=3)
    for number in range(3):
        await limiter.failed(f"user-{number}@example.com", "10.0.0.1")

    with pytest.raises(RateLimitedError):
        await limiter.check("someone-else@example.com", "10.0.0.1")
    await limiter.check("someone-else@example.com", "10.0.0.2")


async def test_success_clears_the_account_but_not_the_client() -> None:
    limiter = throttle(Clock(), max_failures=2, max_failures_per_client=3)
    await limiter.failed("a@example.com", "10.0.0.1")
    await limiter.failed("a@example.com", "10.0.0.1")

    await limiter.succeeded("a@example.com")

    await limiter.check("a@example.com", "10.0.0.9")
    await limiter.failed("b@example.com", "10.0.0.1")
    with pytest.raises(RateLimitedError):
        await limiter.check("c@example.com", "10.0.0.1")
