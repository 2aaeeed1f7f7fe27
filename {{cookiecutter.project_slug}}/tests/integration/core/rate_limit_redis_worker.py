"""One server process of the concurrency test: waits for the start time, fires, prints admissions.

Run as `python -m tests.integration.core.rate_limit_redis_worker URL PREFIX HITS START_EPOCH`.
"""

from __future__ import annotations

import asyncio
import sys
import time

from {{ cookiecutter.project_slug }}.core.rate_limit import RateLimiter, parse_rules
from {{ cookiecutter.project_slug }}.core.rate_limit_redis import (
    RedisRateLimitStore,
    create_rate_limit_redis,
)

RULES = parse_rules("100/day")


async def main(url: str, prefix: str, hits: int, start: float) -> int:
    redis = create_rate_limit_redis(url, timeout=5.0)
    try:
        limiter = RateLimiter(RedisRateLimitStore(redis), key_prefix=prefix, timeout=30.0)
        await redis.ping()  # connected before the start, so the processes really overlap
        await asyncio.sleep(max(0.0, start - time.time()))
        results = await asyncio.gather(
            *(limiter.check("ip:203.0.113.1", "GET /items/{item_id}", RULES) for _ in range(hits))
        )
    finally:
        await redis.aclose()
    if any(decision.error for decision in results):
        raise SystemExit("the store failed")
    return sum(decision.allowed for decision in results)


if __name__ == "__main__":
    url, prefix, hits, start = sys.argv[1:5]
    print(asyncio.run(main(url, prefix, int(hits), float(start))))  # noqa: T201
