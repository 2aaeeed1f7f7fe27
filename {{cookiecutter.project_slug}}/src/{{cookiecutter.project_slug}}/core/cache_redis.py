"""The Redis cache store: every call one round trip, every key with a TTL.

Keys come from `Cache` already prefixed. Tag tokens are plain strings; `ensure_tokens` creates
the missing ones with `SET NX` and reads them back in the same pipeline, `renew_tokens`
overwrites them. The lock is `SET NX PX`, released with the value in one pipeline; a holder
that dies leaves it to expire.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from {{ cookiecutter.project_slug }}.core.cache import CacheStoreError, new_token


def create_cache_redis(
    url: str,
    *,
    timeout: float = 0.25,
    max_connections: int = 50,
    client_name: str = "{{ cookiecutter.project_slug }}-cache",
) -> Redis:
    """A client for the cache alone: a slow Redis costs a request `timeout`, then it reads
    through; the shared client's longer timeouts suit work that cannot do without Redis."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        client_name=client_name,
    )
    return Redis.from_pool(pool)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisCacheStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        try:
            values = await self.redis.mget(keys)
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc
        return [value.encode() if isinstance(value, str) else value for value in values]

    async def set(self, key: str, value: bytes, ttl: float, *, unlock: str | None = None) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, value, px=_ms(ttl))
                if unlock is not None:
                    pipe.delete(unlock)
                await pipe.execute()
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await self.redis.delete(*keys)
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc

    async def ensure_tokens(self, keys: Sequence[str], ttl: float) -> list[bytes]:
        if not keys:
            return []
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.set(key, new_token(), px=_ms(ttl), nx=True)
                pipe.mget(keys)
                replies = await pipe.execute()
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc
        tokens: list[bytes | None] = replies[-1]
        # Only a token expiring between SET and MGET (inside one MULTI it cannot) leaves a gap.
        return [token or new_token() for token in tokens]

    async def renew_tokens(self, keys: Sequence[str], ttl: float) -> None:
        if not keys:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, new_token(), px=_ms(ttl))
                await pipe.execute()
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc

    async def lock(self, key: str, ttl: float) -> bool:
        try:
            return bool(await self.redis.set(key, b"1", px=_ms(ttl), nx=True))
        except RedisError as exc:
            raise CacheStoreError(repr(exc)) from exc
