"""The composition root: from the Settings it is given, open every adapter and bind every use case once.

`open_services(settings, broker=...)` is the only place that turns configuration into
objects. It yields a `Services`: each area's use cases bound to their ports and policy
(domain/services/), plus the few things a transport reads itself (its settings, the
cursor codec, health probes). The API (graph/app.py), the workers (workers/runtime.py)
and the CLI (entrypoints/cli.py) all open it the same way; none of them builds an
adapter or reads the environment (the entry points read Settings once and pass them in).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from taskiq import AsyncBroker

from domain.cursors import CursorCodec
from domain.invitations import InvitationRules
from domain.persisted_documents import ManifestError
from domain.services.account_deletion import AccountDeletion
from domain.services.accounts import Accounts
from domain.services.admin import Administration
from domain.services.api_keys import ApiKeys
from domain.services.boards import Boards
from domain.services.catalogue import Catalogue
from domain.services.chunks import Chunks
from domain.services.credits import Credits
from domain.services.data_exports import DataExports
from domain.services.documents import Documents
from domain.services.generations import Generations
from domain.services.lookups import Lookups
from domain.services.mail import Mail
from domain.services.passwords import Passwords
from domain.services.processing import Processing
from domain.services.storage import StorageUpkeep
from domain.services.throttle import Throttle
from domain.services.thumbnails import Thumbnails
from domain.services.watching import Watching
from domain.services.webhooks import Webhooks
from domain.use_cases.chunks import UploadPolicy
from domain.use_cases.data_exports import ExportPolicy, ExportPorts
from domain.use_cases.mail import MailPolicy, MailPorts
from domain.use_cases.password_reset import ResetPolicy
from domain.use_cases.persisted_documents import DocumentPolicy
from domain.use_cases.processing import ProcessingPorts
from domain.use_cases.provider_health import provider_health
from domain.use_cases.rate_limits import RateRule
from domain.use_cases.storage_deletions import DeletionPolicy
from domain.use_cases.thumbnails import ThumbnailPorts
from domain.use_cases.webhook_deliveries import DeliveryPorts
from domain.use_cases.webhook_endpoints import EndpointPorts
from domain.webhooks import WebhookDestinations, WebhookSender
from infrastructure.container import Container, media_workshop, open_container
from infrastructure.db.json_reads.runner import JsonReads
from infrastructure.document_stores import MemoryDocumentStore, RedisDocumentStore
from infrastructure.exports.zip_archive import ZipArchives
from infrastructure.mail.outbox import Outbox, OutboxMailer
from infrastructure.metrics import observe_provider_health, refresh_queue_depth
from infrastructure.processing_binding import processing_policy, thumbnail_policy
from infrastructure.pubsub.feed import BroadcastFeed
from infrastructure.queue import CONSUMER_GROUP, QUEUE_NAME, build_broker
from infrastructure.security.reset_tokens import HmacResetTokens
from infrastructure.security.webhook_secrets import AesGcmSecretSealer
from infrastructure.settings import Settings
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.routed import RoutedLocalStorage
from infrastructure.task_runtime import is_embedded
from infrastructure.trusted_documents import load_trusted_documents
from infrastructure.webhook_binding import delivery_policy, endpoint_policy, outbox_policy

__all__ = ["Services", "bind", "build_broker", "open_services"]

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Services:
    """What the transports call: bound use cases, and what a transport reads for itself."""

    settings: Settings
    accounts: Accounts
    passwords: Passwords
    generations: Generations
    chunks: Chunks
    credits: Credits
    boards: Boards
    catalogue: Catalogue
    lookups: Lookups
    watching: Watching
    admin: Administration
    processing: Processing
    thumbnails: Thumbnails
    mail: Mail
    storage: StorageUpkeep
    account_deletion: AccountDeletion
    data_exports: DataExports
    api_keys: ApiKeys
    webhooks: Webhooks
    throttle: Throttle
    #: Persisted queries and trusted documents: which text a request that names a document runs.
    documents: Documents
    cursors: CursorCodec
    #: Whether a webhook URL may be called now (URL form, scheme, SSRF address rules).
    webhook_destinations: WebhookDestinations
    #: Sends one signed webhook message to a checked address (deadlines, no redirects, capped answer).
    webhook_sender: WebhookSender
    #: The process's task broker (the lifespan starts it; in embedded mode tasks run on it here).
    broker: AsyncBroker
    #: Readiness checks by name (database, storage, and redis when configured).
    probes: Mapping[str, Probe]
    #: Refreshes the queue-depth gauges before /metrics is rendered.
    refresh_queue_metrics: Probe
    #: Refreshes the provider health gauges (circuits, error rates, running) before /metrics is rendered.
    refresh_provider_metrics: Probe
    #: The local-disk store when files are served by this process (GET /files), else None.
    local_files: LocalStorage | RoutedLocalStorage | None
    #: The outbox mail is written to when this process has no SMTP server (development), else None.
    mail_outbox: Outbox | None
    #: Compiled reads (PostgreSQL only; None: every read runs through the resolvers).
    json_reads: JsonReads | None
    #: `async with read_scope():` every read use case and loader inside shares one session
    #: (infrastructure/db/read_scope.py); the GraphQL layer enters one per query and per event.
    read_scope: Callable[[], AbstractAsyncContextManager[object]]
    #: Gives the current read scope's connection back to the pool if it sits idle (the scope stays
    #: open): the compiled path calls it before its statement, which runs on the driver pool.
    return_read_connection: Callable[[], Awaitable[None]]
    #: The adapters themselves, for operator tools and tests; transports use the fields above.
    adapters: Container


def upload_policy(settings: Settings) -> UploadPolicy:
    return UploadPolicy(
        max_bytes=settings.upload_max_bytes,
        allowed_types=frozenset(t.strip().lower() for t in settings.upload_allowed_types),
        quota_count=settings.chunk_quota_count,
        quota_bytes=settings.chunk_quota_bytes,
    )


def export_policy(settings: Settings) -> ExportPolicy:
    s = settings
    return ExportPolicy(
        ttl_seconds=s.data_export_ttl_seconds,
        allowance=s.data_export_allowance,
        window_seconds=s.data_export_window_seconds,
        max_bytes=s.data_export_max_bytes,
        max_attempts=s.data_export_max_attempts,
        claim_seconds=s.data_export_claim_seconds,
        retry_seconds=s.data_export_retry_seconds,
        # A request's build message is presumed in flight this long before the sweep sends another.
        grace_seconds=max(60.0, 2.0 * s.data_export_sweep_seconds),
    )


def documents(c: Container) -> Documents:
    """The document store (Redis when configured) and the trusted manifest, read now: a bad one stops the start."""
    s = c.settings
    try:
        trusted = load_trusted_documents(s.trusted_documents_manifest)
    except ManifestError as exc:
        raise RuntimeError(f"TRUSTED_DOCUMENTS_MANIFEST cannot be used: {exc}") from None
    store = (
        RedisDocumentStore(c.redis, ttl_seconds=s.persisted_query_ttl_seconds, max_entries=s.persisted_query_cache_size)
        if c.redis is not None
        else MemoryDocumentStore(s.persisted_query_cache_size)
    )
    policy = DocumentPolicy(
        apq_enabled=s.persisted_queries_enabled,
        max_document_bytes=s.persisted_query_max_bytes,
        trusted_only=s.trusted_documents_only,
    )
    return Documents(store=store, trusted=trusted, policy=policy)


def _probes(c: Container) -> dict[str, Probe]:
    async def database() -> None:
        async with c.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    probes: dict[str, Probe] = {"database": database, "storage": c.storage.check}
    if c.redis is not None:
        redis = c.redis

        async def ping() -> None:
            await redis.ping()

        probes["redis"] = ping
    return probes


def _queue_metrics(c: Container) -> Probe:
    broker = c.broker
    # The stream and group the broker really uses (TASK_QUEUE_NAME may rename the stream).
    return functools.partial(
        refresh_queue_depth,
        None if is_embedded(broker) else c.redis,
        stream=getattr(broker, "queue_name", QUEUE_NAME),
        group=getattr(broker, "consumer_group_name", CONSUMER_GROUP),
    )


def _webhooks(c: Container) -> Webhooks:
    s = c.settings
    sealer = AesGcmSecretSealer(s.purpose_secret("webhook-secrets"))
    return Webhooks(
        endpoint_ports=EndpointPorts(
            uow=c.uow, destinations=c.webhook_destinations, sealer=sealer, clock=c.clock, limiter=c.limiter
        ),
        endpoint_policy=endpoint_policy(s),
        delivery_ports=DeliveryPorts(
            uow=c.uow, sender=c.webhook_sender, sealer=sealer, jobs=c.jobs, clock=c.clock, limiter=c.limiter
        ),
        delivery_policy=delivery_policy(s),
        reads=c.read_uow,
    )


async def _refresh_provider_metrics(c: Container) -> None:
    observe_provider_health(await provider_health(breaker=c.breaker, providers=c.providers.names, uow=c.read_uow()))


def bind(c: Container) -> Services:
    """Every use case bound to the adapters of `c` and the policy of `c.settings`, once."""
    s = c.settings
    window = s.rate_limit_window_seconds
    # Outputs are checked and thumbnailed on this process's disk (MEDIA_TEMP_DIR, by default the
    # system's temporary directory), at most MEDIA_CONCURRENCY files at a time.
    media = media_workshop(s)
    return Services(
        settings=s,
        accounts=Accounts(
            uow=c.uow,
            reads=c.read_uow,
            hasher=c.hasher,
            tokens=c.tokens,
            verifier=c.tokens,
            clock=c.clock,
            limiter=c.limiter,
            refresh_family=RateRule(s.rate_limit_refresh_family, s.rate_limit_account_window_seconds),
            gate=c.access_gate,
            revocations=c.revocations,
            catalogue=c.catalogue,
            publisher=c.publisher,
        ),
        passwords=Passwords(
            uow=c.uow,
            hasher=c.hasher,
            tokens=c.tokens,
            clock=c.clock,
            revocations=c.revocations,
            jobs=c.jobs,
            reset_policy=ResetPolicy(
                ttl=timedelta(seconds=s.password_reset_ttl_seconds), link_template=s.effective_password_reset_url
            ),
            reset_tokens=HmacResetTokens(s.purpose_secret("reset-tokens")),
        ),
        generations=Generations(
            uow=c.uow,
            reads=c.read_uow,
            starter=c.starter,
            catalogue=c.catalogue,
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
            limiter=c.limiter,
            rate=RateRule(s.rate_limit_generate, window),
            destinations=c.webhook_destinations,
            webhooks=outbox_policy(s),
        ),
        chunks=Chunks(
            uow=c.uow,
            reads=c.read_uow,
            storage=c.storage,
            clock=c.clock,
            limiter=c.limiter,
            policy=upload_policy(s),
            rate=RateRule(s.rate_limit_upload, window),
            url_seconds=s.presign_expires_seconds,
            pending_ttl_seconds=s.pending_chunk_ttl_seconds,
        ),
        credits=Credits(uow=c.uow, reads=c.read_uow, publisher=c.publisher, clock=c.clock),
        boards=Boards(
            uow=c.uow,
            reads=c.read_uow,
            clock=c.clock,
            limiter=c.limiter,
            invitation_rules=InvitationRules(
                ttl=timedelta(seconds=s.board_invitation_ttl_seconds),
                max_pending_per_board=s.board_invitation_max_pending,
            ),
            invite_rate=RateRule(s.rate_limit_invite, window),
        ),
        catalogue=Catalogue(
            uow=c.uow,
            reads=c.read_uow,
            cache=c.catalogue,
            known_providers=frozenset(c.providers.names),
            clock=c.clock,
        ),
        lookups=Lookups(uow=c.read_uow, catalogue=c.catalogue, clock=c.clock),
        watching=Watching(uow=c.read_uow, feed=BroadcastFeed(c.broadcast, c.read_uow), clock=c.clock),
        admin=Administration(
            uow=c.uow,
            reads=c.read_uow,
            clock=c.clock,
            revocations=c.revocations,
            breaker=c.breaker,
            providers=c.providers.names,
        ),
        processing=Processing(
            ports=ProcessingPorts(
                uow=c.uow,
                providers=c.providers,
                catalogue=c.catalogue,
                storage=c.storage,
                publisher=c.publisher,
                jobs=c.jobs,
                limiter=c.limiter,
                clock=c.clock,
                media=media,
                breaker=c.breaker,
                slots=c.slots,
            ),
            policy=processing_policy(s, embedded=is_embedded(c.broker)),
        ),
        thumbnails=Thumbnails(
            ports=ThumbnailPorts(
                uow=c.uow, storage=c.storage, media=media, publisher=c.publisher, jobs=c.jobs, clock=c.clock
            ),
            policy=thumbnail_policy(s),
        ),
        mail=Mail(
            ports=MailPorts(mailer=c.mailer, outbound=c.outbound_mail, jobs=c.jobs, clock=c.clock),
            policy=MailPolicy(
                give_up_seconds=s.mail_give_up_seconds,
                retry_base_seconds=s.mail_retry_base_seconds,
                retry_max_seconds=s.mail_retry_max_seconds,
                # Connecting, then each SMTP command, may each take the whole timeout.
                hold_seconds=10 * s.smtp_timeout_seconds,
            ),
        ),
        account_deletion=AccountDeletion(
            uow=c.uow,
            hasher=c.hasher,
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
            revocations=c.revocations,
        ),
        storage=StorageUpkeep(
            uow=c.uow,
            storage=c.storage,
            deletion=DeletionPolicy(retry_base_seconds=s.storage_deletion_retry_seconds),
            clock=c.clock,
            orphan_grace=timedelta(seconds=s.orphan_grace_seconds),
        ),
        data_exports=DataExports(
            ports=ExportPorts(
                uow=c.uow, storage=c.storage, archives=ZipArchives(s.media_temp_dir), jobs=c.jobs, clock=c.clock
            ),
            policy=export_policy(s),
        ),
        api_keys=ApiKeys(uow=c.uow, reads=c.read_uow, clock=c.clock, revocations=c.revocations, gate=c.api_key_gate),
        webhooks=_webhooks(c),
        throttle=Throttle(c.limiter),
        documents=documents(c),
        cursors=c.cursors,
        webhook_destinations=c.webhook_destinations,
        webhook_sender=c.webhook_sender,
        broker=c.broker,
        probes=_probes(c),
        refresh_queue_metrics=_queue_metrics(c),
        refresh_provider_metrics=functools.partial(_refresh_provider_metrics, c),
        local_files=c.storage if isinstance(c.storage, LocalStorage | RoutedLocalStorage) else None,
        mail_outbox=c.mailer.outbox if isinstance(c.mailer, OutboxMailer) else None,
        json_reads=c.json_reads,
        read_scope=c.read_uow.scope,
        return_read_connection=c.read_uow.put_back,
        adapters=c,
    )


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, broker: AsyncBroker | None = None) -> AsyncIterator[Services]:
    """Open every adapter (closed in reverse order on exit) and bind the use cases to them.

    `broker`: the process's task broker when the caller registered tasks on it (the API in
    embedded mode, a worker); otherwise one is built from `settings` (the CLI only enqueues).
    """
    async with open_container(settings, broker=broker or build_broker(settings)) as container:
        yield bind(container)
