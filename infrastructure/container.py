"""Every adapter of a process, built from Settings, opened and closed together.

Part of the composition root: `infrastructure/bootstrap.py` opens these and binds the use
cases to them (`Services`). Tests and operator tools may read the adapters themselves.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from taskiq import AsyncBroker

from domain.cursors import CursorCodec
from domain.ports import (
    CircuitBreaker,
    EventPublisher,
    Mailer,
    ObjectStorage,
    OutboundMail,
    ProviderSlots,
    RateLimiter,
)
from domain.provider_health import CircuitPolicy
from domain.repositories import GenerationStarter
from domain.use_cases.access_gate import AccessGate
from domain.use_cases.api_key_gate import ApiKeyGate
from infrastructure.access_revocations import BroadcastRevocations
from infrastructure.api_key_usage import LastUsedFlusher
from infrastructure.catalogue_cache import CatalogueCache
from infrastructure.circuit_breaker import FallbackCircuitBreaker, MemoryCircuitBreaker, RedisCircuitBreaker
from infrastructure.clock import SystemClock
from infrastructure.db.driver_pool import FairPool
from infrastructure.db.engine import create_engine, create_session_factory, open_driver_pool
from infrastructure.db.generation_starts import PgGenerationStarter, SqlGenerationStarter
from infrastructure.db.json_reads.runner import JsonReads
from infrastructure.db.read_scope import RequestReads
from infrastructure.db.repositories.outbound_emails import SqlOutboundMail
from infrastructure.db.uow import SqlUnitOfWorkFactory
from infrastructure.mail.factory import build_mailer
from infrastructure.media import LocalMediaWorkshop
from infrastructure.provider_metrics import instrument_providers
from infrastructure.provider_slots import MemoryProviderSlots, RedisProviderSlots
from infrastructure.providers.kie import build_http_client
from infrastructure.providers.registry import ProviderRegistry, build_providers
from infrastructure.pubsub.publisher import BroadcastPublisher, open_broadcast
from infrastructure.queue import StreamBroker, TaskiqJobQueue
from infrastructure.ratelimit import MemoryRateLimiter, RedisRateLimiter
from infrastructure.ratelimit_fallback import FallbackRateLimiter
from infrastructure.redis_pipelining import AutoPipeline
from infrastructure.redis_timeouts import command_client, command_pipeline
from infrastructure.security.passwords import Argon2PasswordHasher
from infrastructure.security.tokens import TokenService
from infrastructure.settings import Settings
from infrastructure.storage.factory import open_storage
from infrastructure.tracing import setup_tracing
from infrastructure.webhooks.destinations import ResolvingDestinations
from infrastructure.webhooks.factory import open_webhooks
from infrastructure.webhooks.sender import HttpWebhookSender


@dataclass(slots=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    uow: SqlUnitOfWorkFactory
    #: Autocommit read units (no transaction to open and roll back), one session per request scope.
    read_uow: RequestReads
    starter: GenerationStarter
    json_reads: JsonReads | None  # compiled reads (PostgreSQL only)
    clock: SystemClock
    hasher: Argon2PasswordHasher
    tokens: TokenService
    redis: Redis | None
    limiter: RateLimiter
    #: Provider circuits: on Redis (kept in process while it is down), or in process without Redis.
    breaker: CircuitBreaker
    #: Providers' in-flight slots (PROVIDER_CONCURRENCY): on Redis for every worker, or in process without Redis.
    slots: ProviderSlots
    catalogue: CatalogueCache
    storage: ObjectStorage
    broadcast: Any
    publisher: EventPublisher
    http: httpx.AsyncClient
    providers: ProviderRegistry
    broker: AsyncBroker
    jobs: TaskiqJobQueue
    cursors: CursorCodec
    #: SMTP, or the local outbox (SMTP_HOST unset): infrastructure/mail/factory.py
    mailer: Mailer
    outbound_mail: OutboundMail
    #: What this process remembers of each user's access (domain/use_cases/access_gate.py).
    access_gate: AccessGate
    #: Announces revocations to every process and applies theirs to `access_gate`.
    revocations: BroadcastRevocations
    #: Whether a webhook URL may be called (registration and every attempt; the SSRF rules).
    webhook_destinations: ResolvingDestinations
    #: Sends one signed webhook message (workers); its HTTP client is closed with the container.
    webhook_sender: HttpWebhookSender
    #: What this process remembers of API keys, and when each was last used (domain/use_cases/api_key_gate.py).
    api_key_gate: ApiKeyGate
    #: Writes `api_key_gate`'s last-used moments in batches.
    api_key_usage: LastUsedFlusher


def circuit_breaker(settings: Settings, redis: Redis | None) -> CircuitBreaker:
    """Provider circuits shared by every worker on Redis (in process while it is down), else in process."""
    policy = CircuitPolicy(
        failures_to_open=settings.provider_circuit_failures,
        cooldown_seconds=settings.provider_circuit_cooldown_seconds,
        window_seconds=settings.provider_health_window_seconds,
    )
    if redis is None:
        return MemoryCircuitBreaker(policy)
    # Named after the task queue: deployments sharing one Redis keep circuits of their own.
    primary = RedisCircuitBreaker(redis, policy, prefix=f"{settings.task_queue_name}:circuit:")
    return FallbackCircuitBreaker(primary, MemoryCircuitBreaker(policy))


def provider_slots(settings: Settings, redis: Redis | None) -> ProviderSlots:
    """In-flight slots shared by every worker on Redis (named after the task queue, as the circuits), else in process."""
    if redis is None:
        return MemoryProviderSlots()
    return RedisProviderSlots(redis, prefix=f"{settings.task_queue_name}:slots:")


def cursor_codec(settings: Settings) -> CursorCodec:
    """Page cursors signed with a key derived from the configured secrets (so every replica agrees),
    or from the secret drawn in the data directory when none is configured.

    Changing any of them (or asking another deployment) turns old cursors into InvalidInput.
    """
    configured = (settings.jwt_secret, settings.jwt_private_key, settings.url_signing_secret)
    material = "\x00".join(configured) if any(configured) else settings.effective_jwt_secret
    return CursorCodec.from_secret(material)


def media_workshop(settings: Settings) -> LocalMediaWorkshop:
    """The process's media workshop (one per process: its concurrency bound is per process)."""
    return LocalMediaWorkshop(
        temp_dir=settings.media_temp_dir,
        concurrency=settings.media_concurrency,
        ffmpeg_memory_bytes=settings.media_ffmpeg_memory_bytes,
        spool_budget_bytes=settings.media_spool_budget_bytes,
    )


async def open_driver_statements(
    engine: AsyncEngine,
    uow: SqlUnitOfWorkFactory,
    settings: Settings,
    cursors: CursorCodec,
    stack: contextlib.AsyncExitStack,
) -> tuple[GenerationStarter, JsonReads | None]:
    """On PostgreSQL, the single-statement paths on one driver-level pool: the start of a generation
    (a stored function) and compiled reads. Elsewhere a unit of work starts, and nothing is compiled."""
    if engine.dialect.name != "postgresql":
        return SqlGenerationStarter(uow), None
    size = settings.database_start_pool_size
    pool = FairPool(await open_driver_pool(engine, size), size)
    stack.push_async_callback(pool.close)
    return PgGenerationStarter(pool), JsonReads(pool, cursors) if settings.compiled_reads else None


@contextlib.asynccontextmanager
async def open_container(settings: Settings, *, broker: AsyncBroker) -> AsyncIterator[Container]:
    """Open every adapter once per process; close them in reverse order. `broker`: the process's own."""
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        setup_tracing(settings, engine=engine)  # no-op unless OTEL_EXPORTER_OTLP_ENDPOINT is set
        session_factory = create_session_factory(engine)
        uow = SqlUnitOfWorkFactory(session_factory)
        # Shared per request on PostgreSQL only: SQLite's engine has one connection for the process.
        postgres = engine.dialect.name == "postgresql"
        # AUTOCOMMIT on PostgreSQL only (no BEGIN/ROLLBACK per read). On SQLite it gains nothing
        # (a SELECT opens no transaction) and costs an await on the driver's thread at every
        # checkout and checkin to switch the isolation level: a read cancelled there (graphql-core
        # cancels a failed field's siblings) kept the process's one connection until collected.
        reads = RequestReads(
            create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
            if postgres
            else session_factory,
            shared=postgres,
        )

        the_broker = broker
        redis: Redis | None = None
        limiter: RateLimiter = MemoryRateLimiter()
        # One pipeline for the short writes of a request (rate-limit script, queue XADD, event
        # PUBLISHes): the queue's when it is on Redis, so they share round trips.
        pipeline: AutoPipeline | None = None
        if settings.redis_url:
            redis = command_client(settings)
            stack.push_async_callback(redis.aclose)
            if isinstance(the_broker, StreamBroker):
                pipeline = the_broker.pipeline  # closed by the broker's shutdown
            else:
                pipeline = command_pipeline(settings, redis)
                stack.push_async_callback(pipeline.aclose)
            # counted in process while Redis is down (infrastructure/ratelimit_fallback.py says why)
            limiter = FallbackRateLimiter(RedisRateLimiter(redis, pipeline=pipeline))
        breaker = circuit_breaker(settings, redis)

        # Read by a refresh task of its own, outside every request's scope: a request holding its
        # scope's connection never waits for it (infrastructure/catalogue_cache.py).
        catalogue = CatalogueCache(reads, ttl_seconds=settings.catalogue_cache_ttl_seconds, redis=redis)
        await catalogue.start()
        stack.push_async_callback(catalogue.stop)

        storage = await open_storage(settings, stack)
        broadcast = await open_broadcast(settings, publish_pipeline=pipeline)
        stack.push_async_callback(broadcast.disconnect)
        clock = SystemClock()
        access_gate = AccessGate(
            ttl_seconds=settings.access_gate_ttl_seconds,
            session_window=timedelta(seconds=settings.access_token_ttl_seconds + 60),  # a minute for clock skew
            clock=clock,
            monotonic=time.monotonic,
        )
        api_key_gate = ApiKeyGate(
            access=access_gate,
            clock=clock,
            monotonic=time.monotonic,
            ttl_seconds=settings.api_key_cache_ttl_seconds,
        )
        revocations = BroadcastRevocations(broadcast, access_gate, keys=api_key_gate)
        await revocations.start()
        stack.push_async_callback(revocations.stop)
        api_key_usage = LastUsedFlusher(api_key_gate, uow, interval_seconds=settings.api_key_last_used_flush_seconds)
        api_key_usage.start()
        stack.push_async_callback(api_key_usage.stop)

        http = build_http_client(settings)
        stack.push_async_callback(http.aclose)
        providers = instrument_providers(build_providers(settings, http))
        cursors = cursor_codec(settings)
        starter, json_reads = await open_driver_statements(engine, uow, settings, cursors, stack)
        webhook_destinations, webhook_sender = open_webhooks(settings, stack)
        yield Container(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            uow=uow,
            read_uow=reads,
            starter=starter,
            json_reads=json_reads,
            clock=clock,
            hasher=Argon2PasswordHasher(),
            tokens=TokenService.from_settings(settings),
            redis=redis,
            limiter=limiter,
            breaker=breaker,
            slots=provider_slots(settings, redis),
            catalogue=catalogue,
            storage=storage,
            broadcast=broadcast,
            publisher=BroadcastPublisher(broadcast),
            http=http,
            providers=providers,
            broker=the_broker,
            jobs=TaskiqJobQueue(the_broker),
            cursors=cursors,
            mailer=build_mailer(settings),
            outbound_mail=SqlOutboundMail(session_factory),
            access_gate=access_gate,
            revocations=revocations,
            webhook_destinations=webhook_destinations,
            webhook_sender=webhook_sender,
            api_key_gate=api_key_gate,
            api_key_usage=api_key_usage,
        )
