"""Which tokens still count: revoked access tokens and live refresh-token families.

A login starts a family: the id every refresh token descended from that login carries (`fam`),
mapped to the one refresh token of it that is current. Refreshing swaps the current token for
its successor; presenting any other token of the family (a retired one, so a copy someone kept)
deletes the family, which ends every token descended from that login. Logging out deletes the
family and revokes the access token's `jti`. Every entry expires with the token it is about, so
the store never holds more than the live tokens.

Two implementations: Redis (`core/auth_redis.py`), shared by every process, and the in-process
one below (bounded, for projects without Redis: each process then knows only its own
revocations, so run a single process). The container picks one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)


class TokenStore(Protocol):
    """Every method is one round trip; a store that cannot answer raises
    `ServiceUnavailableError`."""

    async def start_family(self, user_id: str, family: str, token_id: str, ttl: int) -> None:
        """Record a new login: `token_id` is the family's current refresh token."""
        ...

    async def rotate(self, family: str, presented: str, successor: str, ttl: int) -> bool:
        """Swap `presented` for `successor` if it is current; otherwise end the family and
        return `False`."""
        ...

    async def end_family(self, family: str) -> None: ...

    async def end_user_families(self, user_id: str) -> None:
        """End every family (every refresh token) of one user."""
        ...

    async def revoke(self, token_id: str, ttl: int) -> None:
        """Refuse the token `token_id` for the next `ttl` seconds (until it expires anyway)."""
        ...

    async def is_revoked(self, token_id: str) -> bool: ...

    def revocation_key(self, token_id: str) -> str | None:
        """The Redis key that exists while `token_id` is revoked, so a caller can check it in a
        round trip it makes anyway (the rate-limit check); None for stores without one."""
        ...


class _ExpiringMap:
    """A bounded map whose entries expire; at the bound the least recently written goes."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: str) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def set(self, key: str, value: object, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        self._prune()

    def pop(self, key: str) -> object | None:
        entry = self._entries.pop(key, None)
        return None if entry is None or entry[0] <= self._clock() else entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self) -> None:
        now = self._clock()
        while self._entries:
            key, (expires, _) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self._max_entries:
                return
            if expires > now:
                log.warning("in-process token store full; dropping its oldest entry", key=key)
            del self._entries[key]


class InMemoryTokenStore:
    """The token store in this process's memory, bounded by `max_entries` per kind of entry.

    Past the bound the oldest entry is dropped (and logged): a dropped family only makes its
    holder log in again, a dropped revocation lets that token live until its natural expiry.
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._families = _ExpiringMap(max_entries, clock)
        self._user_families = _ExpiringMap(max_entries, clock)
        self._revoked = _ExpiringMap(max_entries, clock)
        # Sync code in worker threads (tasks, the CLI) may share the store with the event loop.
        self._lock = threading.Lock()

    async def start_family(self, user_id: str, family: str, token_id: str, ttl: int) -> None:
        with self._lock:
            self._families.set(family, token_id, ttl)
            families = self._user_families.get(user_id)
            known = families if isinstance(families, frozenset) else frozenset()
            self._user_families.set(user_id, known | {family}, ttl)

    async def rotate(self, family: str, presented: str, successor: str, ttl: int) -> bool:
        with self._lock:
            if self._families.get(family) != presented:
                self._families.pop(family)
                return False
            self._families.set(family, successor, ttl)
            return True

    async def end_family(self, family: str) -> None:
        with self._lock:
            self._families.pop(family)

    async def end_user_families(self, user_id: str) -> None:
        with self._lock:
            families = self._user_families.pop(user_id)
            for family in families if isinstance(families, frozenset) else ():
                self._families.pop(family)

    async def revoke(self, token_id: str, ttl: int) -> None:
        with self._lock:
            self._revoked.set(token_id, True, ttl)

    async def is_revoked(self, token_id: str) -> bool:
        with self._lock:
            return self._revoked.get(token_id) is not None

    def revocation_key(self, token_id: str) -> str | None:
        del token_id  # asking this store costs no round trip to save
        return None
