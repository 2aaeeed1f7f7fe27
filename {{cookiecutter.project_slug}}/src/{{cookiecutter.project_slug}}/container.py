"""The composition root: settings in, every long-lived resource and one factory per service out.

The API's lifespan, the Celery worker, the CLI and the tests all build the service graph here
with `build_container`, which closes whatever it opened, even when start-up fails halfway.
Choices between implementations (Redis or in-process, Celery or nothing) are made here once;
the rest of the package reads the same whatever the project was generated with.

A new long-lived component (a cache, say) is added in three steps, all in this module: build it
in `build_container` (registering its close on `stack`), add a field to `Container`, and pass it
to the service factories that need it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.core.auth_redis import (
    RedisAttemptStore,
    RedisTokenStore,
)
from {{ cookiecutter.project_slug }}.core.cache import (
    Cache,
    CacheStore,
    MemoryCacheStore,
    NullCacheStore,
)
from {{ cookiecutter.project_slug }}.core.cache_redis import (
    RedisCacheStore,
    create_cache_redis,
)
from {{ cookiecutter.project_slug }}.core.client_ip import ClientAddressResolver
from {{ cookiecutter.project_slug }}.core.config import Settings
from {{ cookiecutter.project_slug }}.core.cursor import CursorCodec
from {{ cookiecutter.project_slug }}.core.encryption import Encryptor
from {{ cookiecutter.project_slug }}.core.events import (
    UNTRACED,
    Event,
    EventPublisher,
    EventTracing,
)
from {{ cookiecutter.project_slug }}.core.feature_flags import FlagCache
from {{ cookiecutter.project_slug }}.core.logging import get_logger
from {{ cookiecutter.project_slug }}.core.login_throttle import (
    AttemptStore,
    InMemoryAttemptStore,
    LoginThrottle,
)
from {{ cookiecutter.project_slug }}.core.mail import LogMailer, Mailer
from {{ cookiecutter.project_slug }}.core.rate_limit import (
    InMemoryRateLimitStore,
    RateLimiter,
    RateLimitStore,
)
from {{ cookiecutter.project_slug }}.core.rate_limit_redis import (
    RedisRateLimitStore,
    check_eviction_policy,
    create_rate_limit_redis,
)
from {{ cookiecutter.project_slug }}.core.telemetry import tracing
from {{ cookiecutter.project_slug }}.core.token_store import InMemoryTokenStore, TokenStore
from {{ cookiecutter.project_slug }}.db.checks import check_migrations, ping_database
from {{ cookiecutter.project_slug }}.db.session import (
    SessionMaker,
    UnitOfWork,
    create_engine,
    create_session_maker,
    unit_of_work,
    without_transactions,
)
from {{ cookiecutter.project_slug }}.handlers import (
    HandlerFunction,
    handler_name,
    registered_handlers,
)
from {{ cookiecutter.project_slug }}.integrations.http import create_http_client
from {{ cookiecutter.project_slug }}.integrations.upstream import (
    UpstreamClient,
    create_upstream_client,
)
from {{ cookiecutter.project_slug }}.models.types import bind_encryptor
from {{ cookiecutter.project_slug }}.repositories.api_key import ApiKeyRepository
from {{ cookiecutter.project_slug }}.repositories.audit import AuditRepository
from {{ cookiecutter.project_slug }}.repositories.feature_flag import FeatureFlagRepository
from {{ cookiecutter.project_slug }}.repositories.idempotency_key import IdempotencyKeyRepository
from {{ cookiecutter.project_slug }}.repositories.item import ItemRepository
from {{ cookiecutter.project_slug }}.repositories.outbox import OutboxRepository
from {{ cookiecutter.project_slug }}.repositories.user import UserRepository
from {{ cookiecutter.project_slug }}.services.api_key import ApiKeyService
from {{ cookiecutter.project_slug }}.services.audit import AuditLog
from {{ cookiecutter.project_slug }}.services.auth import AuthService
from {{ cookiecutter.project_slug }}.services.feature_flag import FeatureFlags
from {{ cookiecutter.project_slug }}.services.idempotency import IdempotencyService
from {{ cookiecutter.project_slug }}.services.item import ItemService
from {{ cookiecutter.project_slug }}.services.outbox import (
    Handler,
    Kick,
    OutboxPublisher,
    OutboxRelay,
    OutboxService,
    RelayLoop,
    RelayPolicy,
)
from {{ cookiecutter.project_slug }}.services.upstream import UpstreamService
from {{ cookiecutter.project_slug }}.services.user import UserService
{%- if cookiecutter.use_celery == 'y' %}
from {{ cookiecutter.project_slug }}.tasks.app import (
    RELAY_OUTBOX,
    TaskApp,
    broker_check,
    create_celery_app,
)
{%- endif %}

log = get_logger(__name__)

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """Every long-lived resource of one process, and a factory per service."""

    settings: Settings
    engine: AsyncEngine
    session_maker: SessionMaker
    # Encrypts `EncryptedString` columns; bound to `engine`.
    encryptor: Encryptor
    redis: Redis | None
    rate_limiter: RateLimiter
    tasks: TaskApp
    # Revoked access tokens and live refresh-token families.
    tokens: TokenStore
    login_throttle: LoginThrottle
    client_addresses: ClientAddressResolver
    # Delivers recorded events to their handlers; `kick_relay` asks for a run soon.
    relay: OutboxRelay
    kick_relay: Kick
    # Keeps an event in the trace that recorded it, through to its handlers (when tracing is on).
    event_tracing: EventTracing
    mailer: Mailer
    cache: Cache
    # Feature flags as last read by this process (FEATURE_FLAG_CACHE_TTL_SECONDS).
    flag_cache: FlagCache
    # The process's one outbound HTTP client; integrations wrap it per upstream.
    http: httpx.AsyncClient
    upstream: UpstreamClient | None
    # Signs and checks pagination cursors.
    cursors: CursorCodec
    # Readiness checks by name, for /health/ready.
    checks: Mapping[str, Check]

    def unit_of_work(self, *, read_only: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work; `read_only` runs it without a transaction (`without_transactions`)."""
        maker = without_transactions(self.session_maker) if read_only else self.session_maker
        return unit_of_work(maker)

    def events(self, uow: UnitOfWork) -> EventPublisher:
        """Records events in `uow`'s transaction (the outbox); the relay delivers them later."""
        return OutboxPublisher(uow, self.kick_relay, self.event_tracing)

    def outbox(self, uow: UnitOfWork) -> OutboxService:
        return OutboxService(uow, OutboxRepository(uow.session), self.kick_relay)

    def audit(self, uow: UnitOfWork) -> AuditLog:
        return AuditLog(uow, AuditRepository(uow.session), separate=self.separate_audit)

    @asynccontextmanager
    async def separate_audit(self) -> AsyncIterator[AuditLog]:
        """An audit log in a short transaction of its own, committed when the block ends."""
        async with self.unit_of_work() as uow:
            yield self.audit(uow)

    def flags(self, uow: UnitOfWork) -> FeatureFlags:
        return FeatureFlags(
            uow, FeatureFlagRepository(uow.session), self.flag_cache, self.audit(uow)
        )

    def users(self, uow: UnitOfWork) -> UserService:
        return UserService(
            uow, UserRepository(uow.session), self.events(uow), self.tokens, self.audit(uow)
        )

    def auth(self, uow: UnitOfWork) -> AuthService:
        return AuthService(
            self.users(uow), self.settings, self.tokens, self.login_throttle, self.audit(uow)
        )

    def api_keys(self, uow: UnitOfWork) -> ApiKeyService:
        return ApiKeyService(
            uow,
            ApiKeyRepository(uow.session),
            self.users(uow),
            self.settings.api_key_pepper_bytes,
            self.audit(uow),
        )

    def idempotency(self, uow: UnitOfWork) -> IdempotencyService:
        return IdempotencyService(
            IdempotencyKeyRepository(uow.session),
            ttl_seconds=self.settings.idempotency_key_ttl_seconds,
        )

    def items(self, uow: UnitOfWork) -> ItemService:
        return ItemService(
            uow,
            ItemRepository(uow.session),
            self.events(uow),
            self.cursors,
            self.cache,
            self.audit(uow),
        )

    def upstream_status(self) -> UpstreamService:
        return UpstreamService(self.upstream)


def _bind_handlers(
    services: Callable[[], Container],
) -> dict[str, Sequence[Handler]]:
    """The registered event handlers, each given the container it runs with."""

    def bind(function: HandlerFunction[Event]) -> Handler:
        async def handle(uow: UnitOfWork, event: Event) -> None:
            await function(services(), uow, event)

        return Handler(handler_name(function), handle)

    return {
        name: [bind(function) for function in functions]
        for name, functions in registered_handlers().items()
    }


def _leave_to_the_running_relay() -> None:
    """The kick of a process without a relay: the API's (or beat's) relay finds the events."""


@asynccontextmanager
async def build_container(settings: Settings, *, role: str = "api") -> AsyncIterator[Container]:
    """Open every resource for a process playing `role` (api, worker, cli); close them after."""
    async with AsyncExitStack() as stack:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name=f"{{ cookiecutter.project_slug }}-{role}",
        )
        stack.push_async_callback(engine.dispose)
        # Events carry no trace unless tracing (when on) supplies the means.
        event_tracing: EventTracing = UNTRACED
        event_tracing = stack.enter_context(tracing(engine))
        encryptor = Encryptor(settings.field_encryption_keys)
        bind_encryptor(engine, encryptor)
        session_maker = create_session_maker(engine)
        checks: dict[str, Check] = {
            "database": lambda: ping_database(session_maker),
            "migrations": lambda: check_migrations(session_maker),
        }
        # Without Redis, limits are counted per process (logged when the store is created).
        rate_limit_store: RateLimitStore = InMemoryRateLimitStore()
        # Without Redis, revocations and failed logins are known to this process only.
        tokens: TokenStore = InMemoryTokenStore()
        attempts: AttemptStore = InMemoryAttemptStore()
        # Other processes cannot invalidate in-process entries: `auto` keeps them only when every
        # write happens in this process (no broker, so tasks and the relay run here too).
        in_process = settings.cache_backend == "memory" or (
            settings.cache_backend == "auto" and settings.effective_broker_url is None
        )
        cache_store: CacheStore = (
            MemoryCacheStore(max_entries=settings.cache_max_entries)
            if in_process
            else NullCacheStore()
        )
        redis: Redis | None = None
        if settings.redis_url:
            # Both clients connect lazily: the service starts (and reports not ready) while
            # Redis is down. The limiter has its own, with timeouts short enough for every request.
            redis = Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=1.0,
                socket_timeout=1.0,
                health_check_interval=30,
            )
            stack.push_async_callback(redis.aclose)
            checks["redis"] = redis.ping
            tokens = RedisTokenStore(redis, key_prefix=settings.redis_key_prefix)
            attempts = RedisAttemptStore(redis)
            limiter_redis = create_rate_limit_redis(settings.redis_url)
            stack.push_async_callback(limiter_redis.aclose)
            rate_limit_store = RedisRateLimitStore(limiter_redis)
            try:
                # An allkeys-* eviction policy would silently reset limits; refused in production.
                await check_eviction_policy(limiter_redis, refuse=settings.is_production)
            except RedisError as exc:
                log.warning("could not read Redis's eviction policy", error=repr(exc))
            if settings.cache_backend in ("auto", "redis"):
                cache_redis = create_cache_redis(settings.redis_url)
                stack.push_async_callback(cache_redis.aclose)
                cache_store = RedisCacheStore(cache_redis)
        relay = OutboxRelay(
            session_maker,
            _bind_handlers(lambda: container),
            RelayPolicy(
                batch_size=settings.outbox_batch_size,
                max_attempts=settings.outbox_max_attempts,
                retry_base_seconds=settings.outbox_retry_base_seconds,
                retry_max_seconds=settings.outbox_retry_max_seconds,
            ),
            tracing=event_tracing,
        )
        kick_relay: Kick = _leave_to_the_running_relay
        # Without a broker the API process runs the relay itself; with one, workers do.
        relay_in_process = role == "api"
{%- if cookiecutter.use_celery == 'y' %}
        tasks = create_celery_app(settings)
        stack.callback(tasks.close)
        if settings.effective_broker_url is not None:
            checks["broker"] = broker_check(settings.effective_broker_url)
            relay_in_process = False
            kick_relay = partial(tasks.send_task, RELAY_OUTBOX)
        # Eager tasks (no broker) run on this container; it is bound below, before any task runs.
        tasks.use_container(lambda: container)
{%- endif %}
        if relay_in_process:
            relay_loop = RelayLoop(relay, settings.outbox_relay_interval_seconds)
            kick_relay = relay_loop.kick
        http = create_http_client(timeout=settings.http_timeout_seconds)
        stack.push_async_callback(http.aclose)
        container = Container(
            settings=settings,
            engine=engine,
            session_maker=session_maker,
            encryptor=encryptor,
            redis=redis,
            rate_limiter=RateLimiter(
                rate_limit_store,
                key_prefix=settings.redis_key_prefix,
                fail_open=settings.rate_limit_fail_open,
            ),
            tasks=tasks,
            tokens=tokens,
            login_throttle=LoginThrottle(
                attempts,
                max_failures=settings.login_max_failures,
                max_failures_per_client=settings.login_max_failures_per_client,
                window_seconds=settings.login_failure_window_seconds,
                key_prefix=settings.redis_key_prefix,
                fail_open=settings.rate_limit_fail_open,
            ),
            client_addresses=ClientAddressResolver(settings.trusted_proxies),
            relay=relay,
            kick_relay=kick_relay,
            event_tracing=event_tracing,
            mailer=LogMailer(),
            cache=Cache(
                cache_store,
                key_prefix=settings.redis_key_prefix,
                default_ttl=settings.cache_ttl_seconds,
            ),
            flag_cache=FlagCache(settings.feature_flag_cache_ttl_seconds),
            http=http,
            upstream=create_upstream_client(http, settings),
            cursors=CursorCodec(settings.signing_key),
            checks=checks,
        )
        if relay_in_process:
            # Started last, so it stops before the resources it uses are closed.
            await stack.enter_async_context(relay_loop.running())
        yield container
