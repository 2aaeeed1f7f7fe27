"""Rate limiting: rules, the GCRA algorithm, stores and the fault policy around them.

Nothing here knows about HTTP; the middleware turns a `Decision` into headers and status codes.

Why not the `limits` library (the engine under slowapi and Flask-Limiter): its fixed window
charges rejected hits, so a throttled client that keeps trying never gets through; its moving
window takes the timestamp from the application server's clock, so one server with a fast clock
admits more than the limit; each limit is a separate script call, so when one of several limits
rejects the others have already been charged; and the remaining count comes from a second call,
not from the decision itself. The algorithm below fixes all four in one short script.

The algorithm is GCRA (the generic cell rate algorithm): a token bucket stored as one number per
key, the theoretical arrival time (TAT). A rule `L/T` admits a burst of `L` requests, then one
every `T/L`; in any interval of length `d` it admits at most `L + d·L/T` requests, so there is no
window boundary at which `2L` can slip through at once (a fixed window's worst case). A rejected
request changes nothing, and `remaining`, `reset` and `retry_after` are computed from the same
state as the decision. Times are integer microseconds; the emission interval `T/L` is rounded up
to a whole microsecond, so the effective period is at most `L` microseconds longer than `T`.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import quote

from prometheus_client import Counter

from {{ cookiecutter.project_slug }}.core.logging import get_logger

log = get_logger(__name__)

ALGORITHM = "gcra"
# Bumped when the stored state changes meaning, so new code never reads old keys.
KEY_VERSION = "v1"
MICROSECONDS = 1_000_000

DECISIONS = Counter(
    "rate_limit_decisions_total",
    "Rate-limit decisions by rule: allowed, limited, or error (the store could not be asked).",
    ["rule", "decision"],
)

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RULE = re.compile(r"(?P<limit>\d+)\s*/\s*(?P<count>\d+)?\s*(?P<unit>second|minute|hour|day)s?")


class RuleSpecError(ValueError):
    """A rate-limit rule string that cannot be parsed."""


class RateLimitStoreError(Exception):
    """The store could not be asked (unreachable, timed out, refused the command)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """`limit` requests per `period` seconds; `name` labels headers, keys and metrics."""

    limit: int
    period: float
    name: str = "default"

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise RuleSpecError(f"limit and period must be positive: {self.limit}/{self.period}")

    @property
    def interval_us(self) -> int:
        """Time one request uses up (the emission interval), rounded up to a microsecond."""
        return math.ceil(self.period * MICROSECONDS / self.limit)

    @property
    def tolerance_us(self) -> int:
        """How far ahead of now the bucket may be booked: the whole burst."""
        return self.interval_us * self.limit

    @property
    def window(self) -> int:
        """The period in whole seconds, as the `w` of the RateLimit-Policy header."""
        return max(1, round(self.period))

    @property
    def key_part(self) -> str:
        return f"{quote(self.name, safe='')}:{self.limit}/{self.interval_us * self.limit}us"


def parse_rules(spec: str, name: str = "default") -> tuple[Rule, ...]:
    """`"100/minute"`, `"10/second; 1000/hour"`, `"5/15minutes"` into rules named after `name`.

    Several rules (separated by `;` or `,`) are all checked, all-or-nothing, on each request.
    """
    parts = [part.strip() for part in re.split(r"[;,]", spec) if part.strip()]
    if not parts:
        raise RuleSpecError("no rule given; expected e.g. '100/minute'")
    rules: list[Rule] = []
    for part in parts:
        match = _RULE.fullmatch(part.lower())
        if match is None:
            raise RuleSpecError(
                f"{part!r} is not a rate; expected '<count>/[<n>]<second|minute|hour|day>', "
                "e.g. '100/minute' or '5/15minutes'"
            )
        count = int(match["count"] or 1)
        limit = int(match["limit"])
        if limit < 1 or count < 1:
            raise RuleSpecError(f"{part!r}: the count and the period must be at least 1")
        rules.append(Rule(limit=limit, period=float(count * _UNITS[match["unit"]]), name=name))
    if len(rules) > 1:
        # Each rule of the group needs a name of its own in the headers and the metrics.
        rules = [Rule(r.limit, r.period, f"{name}-{r.window}s") for r in rules]
        if len({rule.name for rule in rules}) != len(rules):
            raise RuleSpecError(f"{spec!r}: two rules share a period; keep the stricter one")
    return tuple(rules)


class RouteLimit:
    """A route's own rules, declared as one of its dependencies (`api.deps.rate_limit`).

    The rate-limit middleware finds it on the matched route, once per path, and checks these
    rules instead of the default or path ones, in the same single store call. As a dependency it
    does nothing: by the time the route runs, the request has been admitted.
    """

    __slots__ = ("rules",)

    def __init__(self, spec: str, name: str = "route") -> None:
        self.rules = parse_rules(spec, name)

    async def __call__(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What a store answers for one check of several rules, in the order of the rules.

    `debts_us[i]` is how far ahead of now rule i's bucket is booked after the check (0: whole).
    `now_us` is the store's clock, used only to put an absolute time in `X-RateLimit-Reset`.
    """

    allowed: bool
    retry_after_us: int
    remaining: tuple[int, ...]
    debts_us: tuple[int, ...]
    now_us: int
    # Whether each key asked about with `exists` exists; empty when the store cannot tell.
    exists: tuple[bool, ...] = ()


class RateLimitStore(Protocol):
    """Atomically checks every rule of one request and charges them all, or none."""

    async def acquire(
        self, keys: Sequence[str], rules: Sequence[Rule], cost: int, exists: Sequence[str] = ()
    ) -> StoreResult:
        """Raises `RateLimitStoreError` when the store cannot answer.

        `exists` names keys whose existence the store reports in the same round trip (the
        revocation check of the caller's token rides along with its rate-limit check).
        """
        ...


@dataclass(frozen=True, slots=True)
class Quota:
    """One rule's state after a decision, as the headers show it."""

    rule: Rule
    remaining: int
    reset_after: float
    """Seconds until the quota is whole again, or, when exhausted, until the next request fits."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float
    """Seconds until a rejected request would be admitted (0 when allowed)."""
    quotas: tuple[Quota, ...] = ()
    """Empty when the store could not be asked."""
    reset_epoch: float | None = None
    """Absolute time (the store's clock) at which the binding quota is whole or usable again."""
    error: bool = False
    """The store could not be asked: `allowed` is the fail-open (or fail-closed) policy."""
    exists: tuple[bool, ...] = ()
    """The store's answers for the `exists` keys of the check; empty when it gave none."""

    @property
    def binding(self) -> Quota | None:
        """The quota closest to exhaustion, which the single-valued legacy headers describe."""
        return _closest_to_exhaustion(self.quotas) if self.quotas else None

    @property
    def retry_after_seconds(self) -> int:
        """`Retry-After` as HTTP wants it: whole seconds, at least 1, never early."""
        return max(1, math.ceil(self.retry_after))


def _closest_to_exhaustion(quotas: Sequence[Quota]) -> Quota:
    return min(quotas, key=lambda q: (q.remaining, -q.reset_after))


def gcra(
    tats_us: Sequence[int | None], rules: Sequence[Rule], cost: int, now_us: int
) -> tuple[StoreResult, list[int]]:
    """One all-or-nothing GCRA step; returns the result and the TATs to store if allowed.

    The Redis script implements exactly this; the in-process store calls it directly.
    """
    tats = [max(tat or 0, now_us) for tat in tats_us]
    retry = 0
    for tat, rule in zip(tats, rules, strict=True):
        allow_at = tat + rule.interval_us * cost - rule.tolerance_us
        retry = max(retry, allow_at - now_us)
    allowed = retry <= 0
    if allowed:
        tats = [tat + rule.interval_us * cost for tat, rule in zip(tats, rules, strict=True)]
    remaining = tuple(
        (rule.tolerance_us - (tat - now_us)) // rule.interval_us
        for tat, rule in zip(tats, rules, strict=True)
    )
    result = StoreResult(
        allowed=allowed,
        retry_after_us=max(retry, 0),
        remaining=remaining,
        debts_us=tuple(tat - now_us for tat in tats),
        now_us=now_us,
    )
    return result, tats


def _monotonic_us() -> int:
    return time.monotonic_ns() // 1000


def _epoch_us() -> int:
    return time.time_ns() // 1000


class InMemoryRateLimitStore:
    """GCRA in this process's memory: exact within one process, per process across several.

    With N worker processes a client can get up to N times the limit, and limits restart with
    the process. Memory is bounded by `max_keys`: buckets that are whole again hold no
    information and are dropped first; past the bound the least recently used bucket goes
    (that client starts afresh).
    """

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], int] = _monotonic_us,
        wall_clock: Callable[[], int] = _epoch_us,
    ) -> None:
        self._tats: OrderedDict[str, int] = OrderedDict()
        self._max_keys = max_keys
        # Monotonic for the algorithm (a wall-clock step must not grant or take quota); the
        # wall clock only dates X-RateLimit-Reset.
        self._clock = clock
        self._wall_clock = wall_clock
        # Checks from worker threads (sync endpoints, tasks) must not interleave.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    async def acquire(
        self, keys: Sequence[str], rules: Sequence[Rule], cost: int, exists: Sequence[str] = ()
    ) -> StoreResult:
        del exists  # this store holds only buckets; `StoreResult.exists` stays empty
        with self._lock:
            now = self._clock()
            result, tats = gcra([self._tats.get(key) for key in keys], rules, cost, now)
            if result.allowed:
                for key, tat in zip(keys, tats, strict=True):
                    self._tats[key] = tat
                    self._tats.move_to_end(key)
            self._sweep(now)
        return replace(result, now_us=self._wall_clock())

    def _sweep(self, now: int) -> None:
        # The oldest entries are the likeliest to be whole again; a few per call keeps it O(1).
        for _ in range(2):
            if not self._tats:
                return
            key, tat = next(iter(self._tats.items()))
            if tat > now and len(self._tats) <= self._max_keys:
                return
            del self._tats[key]


def bucket_key(prefix: str, identity: str, bucket: str, rule: Rule) -> str:
    """`<prefix>rl:gcra:v1:{<identity>}:<rule>:<bucket>`, each part escaped so it stays injective.

    The identity is the Redis Cluster hash tag: every key of one check lands in one slot.
    """
    tag = "{" + quote(identity, safe="") + "}"
    return f"{prefix}rl:{ALGORITHM}:{KEY_VERSION}:{tag}:{rule.key_part}:{quote(bucket, safe='')}"


class RateLimiter:
    """Asks the store, and decides what happens when it cannot answer.

    A check the store fails (error or `timeout`) follows the policy: admit (`fail_open`, the
    default, counted as `error`) or refuse with `retry_after`. `failure_threshold` failures in
    a row open a breaker: for `breaker_seconds` the store is not asked and every check follows
    the policy at once. The next check after that asks the store again, so limits resume by
    themselves.

    The timeout is measured on the event loop, so it also counts the time a busy server takes
    to get back to a reply that has arrived: under load, 200 ms passed with Redis healthy, and
    a single such check used to switch the limits off for the whole breaker period. A second
    is far beyond a healthy store's answer; a streak of failures, not one, says it is down.
    """

    def __init__(
        self,
        store: RateLimitStore,
        *,
        key_prefix: str = "",
        fail_open: bool = True,
        timeout: float = 1.0,
        failure_threshold: int = 3,
        breaker_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.key_prefix = key_prefix
        self.fail_open = fail_open
        self.timeout = timeout
        self.failure_threshold = failure_threshold
        self.breaker_seconds = breaker_seconds
        self._clock = clock
        self._open_until = 0.0
        self._failures = 0  # in a row
        self._failing = False

    async def check(
        self,
        identity: str,
        bucket: str,
        rules: Sequence[Rule],
        cost: int = 1,
        *,
        exists: Sequence[str] = (),
    ) -> Decision:
        """Charge `cost` to every rule for `identity` in `bucket`, or to none of them.

        `exists`: keys whose existence the store reports in the same round trip, if it can.
        """
        if not rules:
            return Decision(allowed=True, retry_after=0.0)
        if cost > min(rule.limit for rule in rules):
            raise ValueError(f"cost {cost} exceeds the smallest limit; it could never pass")
        now = self._clock()
        if now < self._open_until:
            return self._unavailable(rules, self._open_until - now)
        keys = [bucket_key(self.key_prefix, identity, bucket, rule) for rule in rules]
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.store.acquire(keys, rules, cost, exists)
        except (RateLimitStoreError, TimeoutError) as exc:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open_until = self._clock() + self.breaker_seconds
            if not self._failing:
                self._failing = True
                log.warning(
                    "rate-limit store unavailable",
                    error=repr(exc),
                    policy="fail open" if self.fail_open else "fail closed",
                    retry_in_seconds=self.breaker_seconds,
                )
            return self._unavailable(rules, self.breaker_seconds)
        self._failures = 0
        if self._failing:
            self._failing = False
            log.info("rate-limit store reachable again; limits apply")
        return self._decide(result, rules, cost)

    def _decide(self, result: StoreResult, rules: Sequence[Rule], cost: int) -> Decision:
        quotas = []
        for rule, remaining, debt in zip(rules, result.remaining, result.debts_us, strict=True):
            # An exhausted quota is usable again once one interval has been paid back.
            usable_in = max(debt + rule.interval_us - rule.tolerance_us, 0)
            reset_us = debt if remaining > 0 else usable_in
            quotas.append(Quota(rule, int(remaining), reset_us / MICROSECONDS))
            if result.allowed:
                DECISIONS.labels(rule.name, "allowed").inc()
            elif debt + rule.interval_us * cost > rule.tolerance_us:
                DECISIONS.labels(rule.name, "limited").inc()  # this rule is one that refused
        retry_after = result.retry_after_us / MICROSECONDS
        binding = _closest_to_exhaustion(quotas)
        reset = binding.reset_after if result.allowed else retry_after
        return Decision(
            allowed=result.allowed,
            retry_after=retry_after,
            quotas=tuple(quotas),
            reset_epoch=result.now_us / MICROSECONDS + reset,
            exists=result.exists,
        )

    def _unavailable(self, rules: Sequence[Rule], retry_after: float) -> Decision:
        for rule in rules:
            DECISIONS.labels(rule.name, "error").inc()
        return Decision(allowed=self.fail_open, retry_after=retry_after, error=True)
