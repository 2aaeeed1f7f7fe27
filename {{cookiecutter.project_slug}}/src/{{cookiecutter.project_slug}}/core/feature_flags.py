"""Feature-flag rules and the process's cache of them. No I/O here: the service loads the rules.

A flag is on for a user when it is enabled globally and the user is either on its allow list or
inside its rollout. Rollout buckets come from a stable hash of flag and user, so a user keeps
their answer between requests and processes, and raising the percentage only adds users.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

BUCKETS = 10_000
"""Rollout granularity: one bucket is 0.01 % of users."""


def rollout_bucket(flag: str, user_id: uuid.UUID) -> int:
    """The user's bucket (0..9999) for `flag`: SHA-256, never Python's per-process `hash()`.

    The flag's name is part of the input, so each flag picks a different set of early users.
    """
    digest = hashlib.sha256(f"{flag}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class FlagRule:
    name: str
    enabled: bool
    # Users in buckets below this get the feature; BUCKETS means everyone.
    rollout_basis_points: int
    allowed_user_ids: frozenset[str]

    def applies_to(self, user_id: uuid.UUID | None) -> bool:
        if not self.enabled:
            return False
        if self.rollout_basis_points >= BUCKETS:
            return True
        if user_id is None:
            return False
        if str(user_id) in self.allowed_user_ids:
            return True
        return rollout_bucket(self.name, user_id) < self.rollout_basis_points


Loader = Callable[[], Awaitable[Mapping[str, FlagRule]]]


class FlagCache:
    """Every flag, read at once and reused for `ttl_seconds` by the whole process.

    Hand-written rather than a general cache: the flags table is small and read as one snapshot,
    so this is a mapping and a timestamp. `invalidate()` (after an admin's change commits) makes
    this process read again at once; other processes see the change within `ttl_seconds`.
    """

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._rules: Mapping[str, FlagRule] = {}
        self._loaded_at: float | None = None
        # Bumped by invalidate(): a load that began before it must not be kept after it.
        self._generation = 0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self._ttl

    async def rules(self, load: Loader) -> Mapping[str, FlagRule]:
        if self._fresh():
            return self._rules
        # One load at a time: concurrent requests after expiry wait for it instead of all
        # querying the database.
        async with self._lock:
            if self._fresh():
                return self._rules
            generation = self._generation
            rules = await load()
            if generation == self._generation:
                self._rules, self._loaded_at = rules, self._clock()
            return rules

    def invalidate(self) -> None:
        self._generation += 1
        self._loaded_at = None
