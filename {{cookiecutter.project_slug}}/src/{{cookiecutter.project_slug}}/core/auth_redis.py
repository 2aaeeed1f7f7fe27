"""The Redis token store and login-attempt store: one round trip per call, entries with TTLs.

Keys (after the container's prefix): `tok:fam:<family>` holds the family's current refresh
token id; `tok:user:<user id>` the set of the user's families; `tok:revoked:<jti>` marks a
revoked access token; `login:account:<sha256 of e-mail>` and `login:client:<address>` count
failed logins. Every key has a TTL no longer than what it is about, so nothing needs cleaning.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from {{ cookiecutter.project_slug }}.core.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.core.login_throttle import AttemptStoreError

# Swaps the current token for its successor, or ends the family when another one is presented.
ROTATE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""

# ARGV[1] is the family-key prefix; the user's families are read and ended atomically.
END_USER_FAMILIES_SCRIPT = """
for _, family in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. family)
end
redis.call('DEL', KEYS[1])
return 1
"""

_UNAVAILABLE = "the token store is unavailable; try again shortly"


class RedisTokenStore:
    def __init__(self, redis: Redis, *, key_prefix: str = "") -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}tok:"
        self._rotate = redis.register_script(ROTATE_SCRIPT)
        self._end_user_families = redis.register_script(END_USER_FAMILIES_SCRIPT)

    def _family(self, family: str) -> str:
        return f"{self._prefix}fam:{family}"

    def _user(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    async def start_family(self, user_id: str, family: str, token_id: str, ttl: int) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._family(family), token_id, ex=ttl)
                pipe.sadd(self._user(user_id), family)
                # The set lives as long as the user's newest family.
                pipe.expire(self._user(user_id), ttl)
                await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    async def rotate(self, family: str, presented: str, successor: str, ttl: int) -> bool:
        try:
            rotated = await self._rotate(
                keys=[self._family(family)], args=[presented, successor, ttl]
            )
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc
        return bool(rotated)

    async def end_family(self, family: str) -> None:
        try:
            await self._redis.delete(self._family(family))
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    async def end_user_families(self, user_id: str) -> None:
        try:
            keys, args = [self._user(user_id)], [f"{self._prefix}fam:"]
            await self._end_user_families(keys=keys, args=args)
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    async def revoke(self, token_id: str, ttl: int) -> None:
        try:
            await self._redis.set(self.revocation_key(token_id), 1, ex=max(ttl, 1))
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    async def is_revoked(self, token_id: str) -> bool:
        try:
            return bool(await self._redis.exists(self.revocation_key(token_id)))
        except RedisError as exc:
            raise ServiceUnavailableError(_UNAVAILABLE) from exc

    def revocation_key(self, token_id: str) -> str:
        return f"{self._prefix}revoked:{token_id}"


# Counts one failure on every key; the first failure of a window starts the key's TTL.
ADD_FAILURE_SCRIPT = """
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  end
end
return 1
"""


class RedisAttemptStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._add_failure = redis.register_script(ADD_FAILURE_SCRIPT)

    async def counts(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.pttl(key)
                replies = await pipe.execute()
        except RedisError as exc:
            raise AttemptStoreError(repr(exc)) from exc
        result = []
        for count, pttl in zip(replies[::2], replies[1::2], strict=True):
            result.append((int(count or 0), max(int(pttl), 0) / 1000))
        return result

    async def add_failure(self, keys: Sequence[str], window_seconds: int) -> None:
        try:
            await self._add_failure(keys=list(keys), args=[window_seconds])
        except RedisError as exc:
            raise AttemptStoreError(repr(exc)) from exc

    async def clear(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except RedisError as exc:
            raise AttemptStoreError(repr(exc)) from exc
