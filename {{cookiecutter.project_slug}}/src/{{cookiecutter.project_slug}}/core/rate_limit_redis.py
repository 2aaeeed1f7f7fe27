"""The Redis rate-limit store: one atomic script, one round trip per check, Redis's clock.

Script contract (`GCRA_SCRIPT`):
- KEYS: one bucket per rule of the request, all with the same hash tag (one cluster slot).
- ARGV[1]: the cost; then per rule i: ARGV[2i] its emission interval and ARGV[2i+1] its burst
  tolerance, in microseconds.
- Reply: `{allowed (1|0), retry_after_us, now_us, remaining_1, debt_us_1, remaining_2, ...}`.
Time is read with `TIME` inside the script, so application servers' clocks never matter. Either
every rule admits and each key is set to its new TAT with a TTL of exactly the time until its
bucket is whole again, or nothing is written: rejected requests cost nothing and every key expires.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.rate_limit import RateLimitStoreError, Rule, StoreResult

log = get_logger(__name__)

GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local tats = {}
local retry = 0
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat < now then tat = now end
  local allow_at = tat + tonumber(ARGV[2 * i]) * cost - tonumber(ARGV[2 * i + 1])
  if allow_at - now > retry then retry = allow_at - now end
  tats[i] = tat
end
local reply = {retry > 0 and 0 or 1, retry, now}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if retry <= 0 then
    tat = tat + interval * cost
    -- '%d' keeps every digit; Lua's default number format would round to 14 of them.
    redis.call('SET', KEYS[i], string.format('%d', tat),
      'PX', string.format('%d', math.ceil((tat - now) / 1000)))
  end
  reply[#reply + 1] = math.floor((tonumber(ARGV[2 * i + 1]) - (tat - now)) / interval)
  reply[#reply + 1] = tat - now
end
return reply
"""

# Eviction policies that may drop keys with a TTL are fine for limits (ours expire anyway);
# `allkeys-*` drops live buckets under memory pressure, silently resetting clients' limits.
UNSAFE_EVICTION_PREFIX = "allkeys-"


class UnsafeEvictionPolicyError(RuntimeError):
    """The limiter's Redis may evict live rate-limit keys."""


def create_rate_limit_redis(
    url: str,
    *,
    timeout: float = 1.0,
    max_connections: int = 50,
    client_name: str = "{{ cookiecutter.project_slug }}-rate-limit",
) -> Redis:
    """A client for the limiter alone, with one immediate retry.

    Concurrent checks beyond `max_connections` wait for a connection (up to `timeout`) instead
    of failing at once; the limiter's own timeout bounds the whole call. The timeouts run on
    the event loop, so they must leave room for a busy server's lag (see `RateLimiter`).
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # One retry replaces a pooled connection that a Redis restart left dead.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        # Shows in CLIENT LIST, so operators (and tests) can tell the limiter's connections apart.
        client_name=client_name,
    )
    return Redis.from_pool(pool)


class RedisRateLimitStore:
    """Runs `GCRA_SCRIPT` with EVALSHA; loaded once with SCRIPT LOAD, re-sent after NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._sha: str | None = None

    async def load_script(self) -> str:
        self._sha = str(await self.redis.script_load(GCRA_SCRIPT))
        return self._sha

    async def acquire(
        self, keys: Sequence[str], rules: Sequence[Rule], cost: int, exists: Sequence[str] = ()
    ) -> StoreResult:
        args: list[int] = [cost]
        for rule in rules:
            args += (rule.interval_us, rule.tolerance_us)
        found: tuple[bool, ...] = ()
        try:
            sha = self._sha or await self.load_script()
            try:
                reply, found = await self._evalsha(sha, keys, args, exists)
            except NoScriptError:
                # SCRIPT FLUSH, a restart or a failover to a replica that never saw the script.
                # EVAL sends the script along and caches it again: one round trip, and no race
                # with another flush between a reload and the call. (The `exists` answers are
                # dropped with it; callers ask for them themselves then.)
                reply = await self.redis.eval(GCRA_SCRIPT, len(keys), *keys, *args)
        except RedisError as exc:
            raise RateLimitStoreError(str(exc) or type(exc).__name__) from exc
        values = [int(value) for value in reply]
        allowed, retry_after, now = values[:3]
        return StoreResult(
            allowed=allowed == 1,
            retry_after_us=retry_after,
            remaining=tuple(values[3::2]),
            debts_us=tuple(values[4::2]),
            now_us=now,
            exists=found,
        )

    async def _evalsha(
        self, sha: str, keys: Sequence[str], args: Sequence[int], exists: Sequence[str]
    ) -> tuple[list[int], tuple[bool, ...]]:
        if not exists:
            return await self.redis.evalsha(sha, len(keys), *keys, *args), ()
        # Pipelined rather than inside the script: those keys may live in other cluster slots.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(sha, len(keys), *keys, *args)
            for key in exists:
                pipe.exists(key)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies[0], tuple(bool(count) for count in replies[1:])


async def check_eviction_policy(redis: Redis, *, refuse: bool) -> str | None:
    """Read `maxmemory-policy`; warn (or, with `refuse`, raise) when it may evict live limits.

    Returns the policy, or None when the server does not allow CONFIG (some managed services).
    """
    try:
        reply = await redis.config_get("maxmemory-policy")
    except ResponseError as exc:
        log.info("could not read the rate-limit Redis eviction policy", error=str(exc))
        return None
    values = {_text(key): _text(value) for key, value in reply.items()}
    policy = values.get("maxmemory-policy", "")
    if policy.startswith(UNSAFE_EVICTION_PREFIX):
        message = (
            f"the rate-limit Redis has maxmemory-policy {policy}: under memory pressure it evicts "
            "live rate-limit keys and silently resets limits; use noeviction or volatile-*, "
            "or a Redis of its own"
        )
        if refuse:
            raise UnsafeEvictionPolicyError(message)
        log.warning("unsafe rate-limit Redis eviction policy", policy=policy, detail=message)
    return policy


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
