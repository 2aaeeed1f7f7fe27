"""Failed-login throttling per account and per client address.

After `max_failures` failed logins for one account (or `max_failures_per_client` from one
client address) within `window_seconds` of the first, further attempts are refused with 429 and
`Retry-After` before the password is looked at, so guessing costs the attacker the window and
the service no hashing. A successful login clears the account's count. Counts expire with their
window. The store is Redis (`core/auth_redis.py`) or the in-process one below; when it cannot be
asked, `fail_open` decides: log in without throttling, or refuse with 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from {{ cookiecutter.project_slug }}.core.errors import RateLimitedError, ServiceUnavailableError
from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")


class AttemptStoreError(Exception):
    """The attempt store could not be asked."""


class AttemptStore(Protocol):
    """Failure counters that expire a fixed time after their first failure."""

    async def counts(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        """Each key's count and seconds until it expires (`(0, 0.0)` when absent)."""
        ...

    async def add_failure(self, keys: Sequence[str], window_seconds: int) -> None: ...

    async def clear(self, key: str) -> None: ...


class InMemoryAttemptStore:
    """Counters in this process's memory, bounded by `max_keys` (oldest dropped first)."""

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    async def counts(self, keys: Sequence[str]) -> list[tuple[int, float]]:
        now = self._clock()
        with self._lock:
            result = []
            for key in keys:
                count, expires = self._counts.get(key, (0, now))
                result.append((count, expires - now) if expires > now else (0, 0.0))
            return result

    async def add_failure(self, keys: Sequence[str], window_seconds: int) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                count, expires = self._counts.get(key, (0, now))
                if expires <= now:
                    count, expires = 0, now + window_seconds
                self._counts[key] = (count + 1, expires)
            while len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)

    async def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class LoginThrottle:
    def __init__(
        self,
        store: AttemptStore,
        *,
        max_failures: int = 5,
        max_failures_per_client: int = 5,
        window_seconds: int = 900,
        key_prefix: str = "",
        fail_open: bool = True,
        timeout: float = 0.5,
    ) -> None:
        self.store = store
        self.max_failures = max_failures
        self.max_failures_per_client = max_failures_per_client
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix
        self.fail_open = fail_open
        self.timeout = timeout

    def _account_key(self, email: str) -> str:
        # Hashed: the store needs no e-mail addresses in it.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return f"{self.key_prefix}login:account:{digest}"

    def _client_key(self, client: str) -> str:
        return f"{self.key_prefix}login:client:{client}"

    async def check(self, email: str, client: str) -> None:
        """Raise `RateLimitedError` while the account or the client is throttled."""
        keys = [self._account_key(email), self._client_key(client)]
        counts = await self._ask(self.store.counts(keys))
        if counts is None:
            return
        limits = (self.max_failures, self.max_failures_per_client)
        waits = [ttl for (count, ttl), limit in zip(counts, limits, strict=True) if count >= limit]
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            log.warning("login throttled", client=client, retry_after=retry_after)
            raise RateLimitedError(
                f"too many failed logins; retry in {retry_after} s", retry_after=retry_after
            )

    async def failed(self, email: str, client: str) -> None:
        keys = [self._account_key(email), self._client_key(client)]
        await self._ask(self.store.add_failure(keys, self.window_seconds))

    async def succeeded(self, email: str) -> None:
        await self._ask(self.store.clear(self._account_key(email)))

    async def _ask(self, call: Awaitable[T]) -> T | None:
        """The store's answer, or `None` (fail open) when it cannot give one in time."""
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except (AttemptStoreError, TimeoutError) as exc:
            log.warning(
                "login attempt store unavailable",
                error=repr(exc),
                policy="fail open" if self.fail_open else "fail closed",
            )
            if self.fail_open:
                return None
            raise ServiceUnavailableError(
                "login is unavailable for a moment; try again shortly"
            ) from None
