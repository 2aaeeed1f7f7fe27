"""The cache: Redis, in-process or nothing behind one API, and never the reason a request fails.

Keys are `<REDIS_KEY_PREFIX>cache:v1:<key>`; bump `FORMAT_VERSION` when the stored format
changes, and put a version in your own keys (`item:v1:<id>`) when a cached model changes shape.
Values are JSON through a pydantic `TypeAdapter`, so what comes back is validated and typed.

Tags are version tokens, not lists of keys: `invalidate_tags("item:42")` gives the tag a fresh
random token (one round trip, whatever the number of entries). Every entry records the tokens of
its tags as they were *before* its value was computed, and is served only while they are all
unchanged. So a value computed from data read before an invalidation is never served after it,
even when the reader stores it after the writer invalidated (the classic stale-set race), and a
tag that expired or was evicted makes its entries misses, never stale hits. The tags of a key are
known when it is read (the key builders give both), so a hit costs one MGET.

Stampedes: concurrent misses of one key in a process share one computation (unless an
invalidation came between them: a computation that started before it may have read old data);
across processes a short lock (`SET NX PX`) lets one compute while the others poll briefly for
its value, then compute anyway rather than wait on a holder that died. While the store is down
every call computes: read-through, as without a cache.

Failures: a store that is down, slow or returns garbage is logged, counted in
`cache_requests_total{result="error"}` and read through; only the value's own computation can
fail a call. An invalidation that cannot reach the store is logged and counted the same way:
entries then live until their TTL.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Concatenate, Generic, ParamSpec, Protocol, TypeVar

from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

FORMAT_VERSION = "v1"
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache reads: hit, miss, or error (the store failed or held a corrupt value; read through).",
    ["result"],
)
CACHE_INVALIDATION_ERRORS = Counter(
    "cache_invalidation_errors_total",
    "Tag invalidations the store could not take; entries then live until their TTL.",
)

T = TypeVar("T")
P = ParamSpec("P")


class CacheStoreError(Exception):
    """The store could not be asked (unreachable, timed out, refused the command)."""


class CacheStore(Protocol):
    """Bytes in, bytes out, full keys; each method is one round trip at most."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: float, *, unlock: str | None = None) -> None:
        """Store `value` for `ttl` seconds, and release the lock `unlock` if given."""
        ...

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def ensure_tokens(self, keys: Sequence[str], ttl: float) -> list[bytes]:
        """The current token of each tag key, creating a random one where there is none."""
        ...

    async def renew_tokens(self, keys: Sequence[str], ttl: float) -> None:
        """Give each tag key a fresh random token: every entry recording the old one is stale."""
        ...

    async def lock(self, key: str, ttl: float) -> bool:
        """Take a lock that expires after `ttl` seconds; `False` when someone else holds it."""
        ...


def new_token() -> bytes:
    return secrets.token_hex(8).encode()


class MemoryCacheStore:
    """In-process, bounded (least recently used goes first), entries expire.

    Each process has its own: with several processes an invalidation reaches only the process
    that made it, so other processes may serve a value until its TTL. Locks are not needed
    here: the single flight in `Cache` already covers one process.
    """

    def __init__(self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock
        # Celery's eager tasks and the CLI may call from other threads.
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _put(self, key: str, value: bytes, ttl: float, now: float) -> None:
        self._entries[key] = (now + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            now = self._clock()
            return [self._get(key, now) for key in keys]

    async def set(
        self,
        key: str,
        value: bytes,
        ttl: float,
        *,
        unlock: str | None = None,  # noqa: ARG002
    ) -> None:
        with self._lock:
            self._put(key, value, ttl, self._clock())

    async def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    async def ensure_tokens(self, keys: Sequence[str], ttl: float) -> list[bytes]:
        with self._lock:
            now = self._clock()
            tokens = []
            for key in keys:
                token = self._get(key, now)
                if token is None:
                    token = new_token()
                    self._put(key, token, ttl, now)
                tokens.append(token)
            return tokens

    async def renew_tokens(self, keys: Sequence[str], ttl: float) -> None:
        with self._lock:
            now = self._clock()
            for key in keys:
                self._put(key, new_token(), ttl, now)

    async def lock(self, key: str, ttl: float) -> bool:  # noqa: ARG002
        return True

    def __len__(self) -> int:
        return len(self._entries)


class NullCacheStore(MemoryCacheStore):
    """Caching off (`CACHE_BACKEND=none`): a store that keeps nothing, so every read misses."""

    def __init__(self) -> None:
        super().__init__(max_entries=0)


class _CorruptEntryError(Exception):
    def __init__(self, reason: str, tokens: list[bytes | None]) -> None:
        super().__init__(reason)
        self.tokens = tokens


def _encode(tokens: Sequence[bytes], payload: bytes) -> bytes:
    # The tag tokens, then the JSON; JSON never holds a raw newline, so the first one splits.
    return b",".join(tokens) + b"\n" + payload


def _payload_if_current(entry: bytes, tokens: list[bytes | None]) -> bytes | None:
    """The entry's JSON if every tag token it recorded is still current, else `None`."""
    header, newline, payload = entry.partition(b"\n")
    if not newline:
        raise _CorruptEntryError("no header line", tokens)
    recorded = header.split(b",") if header else []
    if len(recorded) != len(tokens) or None in tokens:
        return None
    return payload if recorded == tokens else None


class Cache:
    """Typed get/set/delete, tags and stampede protection over a `CacheStore`."""

    def __init__(
        self,
        store: CacheStore,
        *,
        key_prefix: str = "",
        default_ttl: float = 300.0,
        lock_seconds: float = 5.0,
        wait_seconds: float = 0.5,
        poll_seconds: float = 0.02,
    ) -> None:
        self.store = store
        self.key_prefix = key_prefix
        self._prefix = f"{key_prefix}cache:{FORMAT_VERSION}:"
        self.default_ttl = default_ttl
        self._lock_seconds = lock_seconds
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        # Tag tokens outlive the entries that record them, or those entries would only miss.
        self._tag_ttl = default_ttl * 4
        # Computations under way, by key and the tag tokens they started from.
        self._inflight: dict[tuple[str, tuple[bytes | None, ...]], asyncio.Future[bytes]] = {}

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def _tag(self, tag: str) -> str:
        return f"{self._prefix}tag:{tag}"

    async def _read(self, key: str, tags: Sequence[str]) -> tuple[bytes | None, list[bytes | None]]:
        """The current JSON of `key` (or None) and its tags' tokens, in one round trip."""
        replies = await self.store.get_many([self._key(key), *map(self._tag, tags)])
        entry, tokens = replies[0], replies[1:]
        return (None if entry is None else _payload_if_current(entry, tokens)), tokens

    async def get(self, key: str, adapter: TypeAdapter[T], *, tags: Sequence[str] = ()) -> T | None:
        """The cached value, or `None` on a miss, a stale entry or a store failure."""
        try:
            payload, _ = await self._read(key, tags)
            value = None if payload is None else adapter.validate_json(payload)
        except (CacheStoreError, _CorruptEntryError, ValidationError) as exc:
            _report_error("get", key, exc)
            return None
        CACHE_REQUESTS.labels("miss" if value is None else "hit").inc()
        return value

    async def set(
        self,
        key: str,
        value: T,
        adapter: TypeAdapter[T],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        """Store `value`; with tags, prefer `get_or_set`, which records the tags' tokens from
        before the value was computed (a value set here after an invalidation is served)."""
        try:
            tokens = await self.store.ensure_tokens([self._tag(t) for t in tags], self._tag_ttl)
            await self.store.set(
                self._key(key), _encode(tokens, adapter.dump_json(value)), ttl or self.default_ttl
            )
        except CacheStoreError as exc:
            _report_error("set", key, exc)

    async def delete(self, *keys: str) -> None:
        try:
            await self.store.delete([self._key(key) for key in keys])
        except CacheStoreError as exc:
            CACHE_INVALIDATION_ERRORS.inc()
            log.warning("cache delete failed", keys=keys, error=repr(exc))

    async def invalidate_tags(self, *tags: str) -> None:
        """Make every entry tagged with any of `tags` a miss, in one round trip."""
        try:
            await self.store.renew_tokens([self._tag(tag) for tag in tags], self._tag_ttl)
        except CacheStoreError as exc:
            CACHE_INVALIDATION_ERRORS.inc()
            log.warning("cache invalidation failed", tags=tags, error=repr(exc))

    async def get_or_set(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        adapter: TypeAdapter[T],
        *,
        ttl: float | None = None,
        tags: Sequence[str] = (),
    ) -> T:
        """The cached value, or `compute()`'s, stored; concurrent misses compute once."""
        # `tokens` stays None when the store failed: the value is then computed, not stored.
        tokens: list[bytes | None] | None = None
        try:
            payload, tokens = await self._read(key, tags)
            if payload is not None:
                value = adapter.validate_json(payload)
                CACHE_REQUESTS.labels("hit").inc()
                return value
            CACHE_REQUESTS.labels("miss").inc()
        except CacheStoreError as exc:
            _report_error("get", key, exc)
        except _CorruptEntryError as exc:  # replaced by the value computed below
            _report_error("get", key, exc)
            tokens = exc.tokens
        except ValidationError as exc:
            _report_error("get", key, exc)
        if tokens is None:
            # Without the tokens a computation under way cannot be told fresh from stale.
            return await compute()

        # Only a computation that started from the same tokens is shared: one that began before
        # an invalidation may have read the old data.
        flight = (key, tuple(tokens))
        running = self._inflight.get(flight)
        if running is not None:
            try:
                return adapter.validate_json(await asyncio.shield(running))
            except asyncio.CancelledError:
                if running.cancelled():  # the computing request went away; not this one
                    return await compute()
                raise
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            value = await self._compute_and_store(key, compute, adapter, ttl, tags, tokens)
            future.set_result(adapter.dump_json(value))
            return value
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                # Waiters re-raise it; nobody else may be waiting, which is fine.
                future.exception()
            raise
        finally:
            del self._inflight[flight]

    async def _compute_and_store(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        adapter: TypeAdapter[T],
        ttl: float | None,
        tags: Sequence[str],
        tokens: list[bytes | None],
    ) -> T:
        lock_key = self._key(f"lock:{key}")
        try:
            if any(token is None for token in tokens):
                # Tokens taken before the computation, so an invalidation during it is seen.
                tokens = list(
                    await self.store.ensure_tokens([self._tag(t) for t in tags], self._tag_ttl)
                )
            locked = await self.store.lock(lock_key, self._lock_seconds)
            if not locked:
                value = await self._wait_for(key, adapter, tags)
                if value is not None:
                    return value
        except (CacheStoreError, _CorruptEntryError, ValidationError) as exc:
            _report_error("lock", key, exc)
            return await compute()
        value = await compute()
        try:
            entry = _encode([t for t in tokens if t is not None], adapter.dump_json(value))
            await self.store.set(
                self._key(key), entry, ttl or self.default_ttl, unlock=lock_key if locked else None
            )
        except CacheStoreError as exc:
            _report_error("set", key, exc)
        return value

    async def _wait_for(self, key: str, adapter: TypeAdapter[T], tags: Sequence[str]) -> T | None:
        """Poll while another process computes `key`; `None` when it takes too long."""
        deadline = time.monotonic() + self._wait_seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(self._poll_seconds)
            payload, _ = await self._read(key, tags)
            if payload is not None:
                return adapter.validate_json(payload)
        return None


def _report_error(operation: str, key: str, exc: BaseException) -> None:
    CACHE_REQUESTS.labels("error").inc()
    log.warning("cache unavailable; reading through", operation=operation, key=key, error=repr(exc))


class UsesCache(Protocol):
    """A service whose methods are decorated with `cached`."""

    @property
    def cache(self) -> Cache: ...


S = TypeVar("S", bound=UsesCache)


class cached(Generic[P, T]):  # noqa: N801 - used as a decorator, named like one
    """Cache a service method's result under the key (and tags) its arguments give.

    The key builders take the method's arguments (without `self`), so what the key depends on
    is written next to the method, explicitly:

        @cached(ItemRead, key=lambda item_id: f"item:v1:{item_id}",
                tags=lambda item_id: [f"item:{item_id}"])
        async def read_model(self, item_id: uuid.UUID) -> ItemRead: ...

    Exceptions are not cached: a `NotFoundError` is raised again on the next call.
    """

    def __init__(
        self,
        model: type[T],
        *,
        key: Callable[P, str],
        tags: Callable[P, Iterable[str]] | None = None,
        ttl: float | None = None,
    ) -> None:
        self._adapter = TypeAdapter(model)
        self._key = key
        self._tags = tags
        self._ttl = ttl

    def __call__(
        self, method: Callable[Concatenate[S, P], Awaitable[T]]
    ) -> Callable[Concatenate[S, P], Awaitable[T]]:
        @functools.wraps(method)
        async def wrapper(service: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            tags = list(self._tags(*args, **kwargs)) if self._tags else []
            return await service.cache.get_or_set(
                self._key(*args, **kwargs),
                lambda: method(service, *args, **kwargs),
                self._adapter,
                ttl=self._ttl,
                tags=tags,
            )

        return wrapper
