"""Process settings from the environment (and `.env`); the only module that reads it."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, cast
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.provider_health import ProviderLimit
from domain.webhooks import secret_key
from infrastructure.security.local_secrets import local_secret
from infrastructure.webhooks.addresses import parse_networks

#: The default of earlier releases, published in their source: refused in production if set.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
MIN_JWT_SECRET_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16
MIN_URL_SIGNING_SECRET_LENGTH = 32
LEASE_RENEWALS_PER_LEASE = 3
#: The slot sweep runs this many times in one PROVIDER_SLOT_LEASE_SECONDS, at least.
SLOT_SWEEPS_PER_LEASE = 3
#: MAIL_FROM: an addr-spec of printable ASCII, one @, no spaces, quotes or brackets.
MAIL_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
DEV_MAIL_FROM = "genhub@localhost"
SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}


_RATE_LIMIT = re.compile(r"([a-z][a-z0-9_-]{0,31})=([0-9]{1,7})/([0-9]{1,6})")
_CONCURRENCY = re.compile(r"([a-z][a-z0-9_-]{0,31})=([0-9]{1,7})")


class Settings(BaseSettings):
    # No setting means infinity or NaN: `inf` seconds overflows a timedelta at start-up, `nan` compares false
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./data")
    public_base_url: str = "http://127.0.0.1:8000"

    # database / redis
    database_url: str = ""
    # PostgreSQL connections per process: pool + overflow + start pool (docs/deploy.md, "Connection budget")
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    database_start_pool_size: int = Field(default=5, ge=1)
    # genhub processes holding those pools at once (API processes + worker processes): the
    # start-up check warns when that many budgets exceed the server's max_connections
    database_processes: int = Field(default=3, ge=1)
    # PostgreSQL: answer queries of compilable fields with one SQL statement (docs/architecture.md)
    compiled_reads: bool = True
    redis_url: str = ""
    # A Redis host that stops answering is given up on after these (the rate limits then fall
    # back, the queue refuses): connecting, and any command; a blocking read of the task
    # stream gets its block time on top (infrastructure/redis_timeouts.py)
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0.0)
    redis_command_timeout_seconds: float = Field(default=2.0, gt=0.0)

    # storage
    storage_backend: Literal["local", "s3"] = "local"
    local_storage_path: Path | None = None
    s3_bucket: str = "genhub"
    s3_endpoint_url: str = ""
    s3_public_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    s3_create_bucket: bool = False
    s3_max_pool_connections: int = 50
    # Per-kind areas (docs/deploy.md, "Storage layout"): empty keeps the kind in S3_BUCKET /
    # under LOCAL_STORAGE_PATH; keys are the same wherever a kind lives
    s3_uploads_bucket: str = ""
    s3_outputs_bucket: str = ""
    s3_thumbnails_bucket: str = ""
    s3_exports_bucket: str = ""
    local_uploads_path: Path | None = None
    local_outputs_path: Path | None = None
    local_thumbnails_path: Path | None = None
    local_exports_path: Path | None = None

    # auth
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: str = ""
    jwt_private_key: str = ""
    jwt_public_key: str = ""
    jwt_issuer: str = "genhub"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    url_signing_secret: str = ""
    # URL secrets in use before the current one (comma-separated): provider callback URLs made under them are
    # still accepted, so a job whose callback comes after a rotation is not lost. Each entry is taken both as
    # a former URL_SIGNING_SECRET and as a former JWT_SECRET (from which the URL secret derives when unset)
    url_signing_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list, max_length=8)
    # How long a process trusts what it read of a user's access (suspended, sessions ended) when
    # an announcement of a change could have been lost (docs/security.md, "Ending sessions")
    access_gate_ttl_seconds: float = Field(default=30.0, gt=0)
    # API keys (domain/use_cases/api_key_gate.py): how long a process trusts what it read of a key (a
    # revocation is announced at once; this covers a lost announcement), how often each process writes
    # the keys' lastUsedAt (its precision), and how many key reads a client address may cause per
    # RATE_LIMIT_WINDOW_SECONDS (a key not yet remembered, or an invented one, costs one read)
    api_key_cache_ttl_seconds: float = Field(default=30.0, gt=0)
    api_key_last_used_flush_seconds: float = Field(default=30.0, gt=0, le=3600)
    rate_limit_api_key_lookups: int = Field(default=60, ge=1)
    # password reset by e-mail: how long a link works, and the link ({token} is replaced;
    # empty: PUBLIC_BASE_URL/demo#reset={token}, the token in the fragment so no server logs it)
    password_reset_ttl_seconds: int = Field(default=1800, ge=60)
    password_reset_url: str = ""

    # GraphQL
    graphiql: bool | None = None
    introspection: bool | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_query_depth: int = 12
    max_query_tokens: int = 1000
    max_aliases: int = 30
    max_fragments: int = 50  # fragment definitions per document
    max_fragment_spreads: int = 200  # fragment spreads written in a document
    max_query_cost: int = 5000
    max_batch_size: int = 10
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Proxies in front of the app that each append one X-Forwarded-For entry; 0: the socket
    # peer is the client and the header is ignored (graph/client_address.py).
    trusted_proxy_hops: int = Field(default=0, ge=0)

    # persisted documents (docs/clients.md "Persisted queries" and "Trusted documents")
    # Apollo's automatic persisted queries: clients send a hash, register the text once
    persisted_queries_enabled: bool = True
    # a larger document is run but never stored
    persisted_query_max_bytes: int = Field(default=16 * 1024, ge=256, le=1024 * 1024)
    # documents kept (in Redis across all replicas, else per process), least recently used first out
    persisted_query_cache_size: int = Field(default=5000, ge=1, le=1_000_000)
    # Redis: each document lives this long after its last use
    persisted_query_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # registrations (a new text sent with its hash) per address per RATE_LIMIT_WINDOW_SECONDS
    rate_limit_persisted_register: int = Field(default=60, ge=1)
    # registrations from every address together per RATE_LIMIT_WINDOW_SECONDS (many addresses cannot churn the store)
    rate_limit_persisted_register_global: int = Field(default=600, ge=1)
    # a manifest of trusted documents (Apollo's persisted query manifest or graphql-codegen's
    # persisted-documents.json), read at start; with TRUSTED_DOCUMENTS_ONLY only its documents run
    trusted_documents_manifest: Path | None = None
    trusted_documents_only: bool = False

    # providers
    default_provider: str = "simulated"
    simulated_steps: int = 4
    simulated_step_seconds: float = Field(default=0.5, ge=0.0, le=600.0)
    simulated_mode: Literal["normal", "fail", "hang"] = "normal"
    simulated_submit_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    simulated_download_seconds: float = Field(default=0.0, ge=0.0, le=600.0)

    # media workshop (infrastructure/media/): where outputs are spooled while checked, how many
    # files one process decodes at a time, the address space of one ffmpeg subprocess, the disk
    # one process's spooled files may hold at once (a spool waits for its share)
    media_temp_dir: Path | None = None
    media_concurrency: int = Field(default=2, ge=1, le=64)
    media_ffmpeg_memory_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=256 * 1024 * 1024)
    media_spool_budget_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024 * 1024)
    # what a provider's output may be (domain.media.MediaLimits; docs/deploy.md "Media limits"):
    # its bytes, its pixels (one decode slot holds a picture at about 4 bytes a pixel), its
    # longest side, a video's length, and how long one probe may take
    output_max_bytes: int = Field(default=500 * 1024 * 1024, ge=1024)
    media_max_pixels: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    media_max_side: int = Field(default=16384, ge=512)
    media_max_video_seconds: float = Field(default=600.0, gt=0.0)
    media_probe_timeout_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    kie_base_url: str = "https://api.kie.ai"
    kie_api_key: str = ""
    kie_callback_secret: str = ""
    # KIE accepts about 20 new tasks per 10 s per account; a margin below that (the default of
    # KIE's submit rate when PROVIDER_RATE_LIMITS does not name it)
    kie_rate_limit: int = Field(default=18, ge=1)
    kie_rate_window_seconds: int = Field(default=10, ge=1, le=3600)
    # Replicate (infrastructure/providers/replicate.py): the API token, the API's base URL, the
    # account's webhook signing secret (`GET /v1/webhooks/default/secret`, a whsec_ value;
    # empty: no webhooks are asked for and any received is refused), and how many predictions
    # one deployment creates per window
    replicate_base_url: str = "https://api.replicate.com"
    replicate_api_token: str = ""
    replicate_webhook_secret: str = ""
    replicate_rate_limit: int = Field(default=600, ge=1, le=100_000)
    replicate_rate_window_seconds: int = Field(default=60, ge=1, le=3600)
    # fal.ai (infrastructure/providers/fal.py): the queue API key, its queue host, the JWKS its
    # webhook signatures are checked against (kept for fal_jwks_ttl_seconds, refetched at most
    # once per fal_jwks_refetch_seconds when a signature matches no cached key), whether jobs
    # ask fal for webhooks at all (polling finds every result either way)
    fal_key: str = ""
    fal_queue_base_url: str = "https://queue.fal.run"
    fal_jwks_url: str = "https://rest.alpha.fal.ai/.well-known/jwks.json"
    fal_jwks_ttl_seconds: float = Field(default=24 * 3600.0, ge=60.0, le=7 * 24 * 3600.0)
    fal_jwks_refetch_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)
    fal_webhooks: bool = True
    fal_rate_limit: int = Field(default=20, ge=1, le=100_000)
    fal_rate_window_seconds: int = Field(default=10, ge=1, le=3600)
    provider_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    # provider circuits (domain/provider_health.py, docs/deploy.md "Provider routing"): a provider's
    # circuit opens after this many consecutive failed submits, and lets one probe through after the
    # cool-down; recent outcomes (the error rate admins see) are counted over the health window
    provider_circuit_failures: int = Field(default=5, ge=1, le=1000)
    provider_circuit_cooldown_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    provider_health_window_seconds: int = Field(default=300, ge=60, le=86400)
    # per-provider limits checked before a route is asked (a route over one is skipped, the next
    # tried): new submits per window, "name=count/seconds", and generations it may run at once,
    # "name=count"; comma-separated, e.g. PROVIDER_RATE_LIMITS=replicate=600/60,fal=10/1
    provider_rate_limits: Annotated[list[str], NoDecode] = Field(default_factory=list)
    provider_concurrency: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # how long the last route left waits for its provider's submit rate before the attempt backs off
    provider_rate_wait_seconds: float = Field(default=60.0, ge=0.0, le=600.0)
    # the lease of a generation's in-flight slot (PROVIDER_CONCURRENCY): the slot sweep renews the slots
    # of what runs; one nobody renews (the sweep stopped, its holder died) frees itself after it
    provider_slot_lease_seconds: float = Field(default=300.0, ge=10.0, le=86400.0)
    # after an uncertain submit (the request may have reached the provider, its answer was lost) at a provider
    # that lists its jobs (Replicate), how long the generation waits for that job's callback before the job is
    # looked up, and between inconclusive lookups; never past the deadline. Providers without a lookup wait
    # until the deadline (docs/deploy.md "Provider routing")
    provider_uncertain_grace_seconds: float = Field(default=300.0, ge=0.0, le=86400.0)
    callback_tolerance_seconds: int = 300

    # workers
    # the sweeps run this often (not more than ten times a second: a zero or negative one would spin)
    poll_interval_seconds: float = Field(default=3.0, ge=0.1, le=3600.0)
    submit_max_attempts: int = Field(default=6, ge=1, le=100)
    retry_base_seconds: float = Field(default=1.0, gt=0.0, le=3600.0)
    retry_max_seconds: float = Field(default=60.0, gt=0.0, le=86400.0)
    # A worker holds each task message and each generation it works on under a lease of
    # task_lease_seconds, renewed every task_lease_renew_seconds while it works: a dead
    # worker's jobs are taken over about one lease after it stopped renewing.
    task_lease_seconds: float = Field(default=10.0, ge=1.0, le=3600.0)
    task_lease_renew_seconds: float = Field(default=2.0, gt=0.0)
    stream_maxlen: int = 100_000
    # Tasks one worker process runs at once; it never reads more messages than it has free slots
    worker_max_tasks: int = Field(default=100, ge=1)
    # A task message delivered this many times without an acknowledgement (each worker that
    # took it died) goes to the dead-letter stream `<TASK_QUEUE_NAME>:dead` instead of running again
    task_max_deliveries: int = Field(default=5, ge=1)
    task_dead_letter_maxlen: int = Field(default=10_000, ge=1)
    task_queue_name: str = "genhub:tasks"
    # Outputs whose thumbnail is still pending this long after they were stored are queued
    # again by the thumbnail sweep, which runs every thumbnail_sweep_seconds
    thumbnail_grace_seconds: float = Field(default=60.0, ge=0.0)
    thumbnail_sweep_seconds: int = Field(default=60, ge=1)
    # Objects whose rows were deleted are deleted by a worker; a failed deletion is retried after
    # storage_deletion_retry_seconds, doubling per attempt up to an hour; the outbox is drained again
    # every storage_deletion_sweep_seconds
    storage_deletion_retry_seconds: float = Field(default=5.0, gt=0.0)
    storage_deletion_sweep_seconds: int = Field(default=60, ge=1)
    # `genhub storage orphans` counts an object no row names as an orphan only once it is this old
    # (an upload or an output being stored has no row for a moment)
    orphan_grace_seconds: int = Field(default=86_400, ge=0)
    # Seconds between runs of the worker's orphan sweep (it lists every object of the swept kinds)
    orphan_sweep_seconds: int = Field(default=86_400, ge=60)

    # e-mail (infrastructure/mail/): sent by workers over SMTP when SMTP_HOST is set, else written
    # to DATA_DIR/outbox (development only: production refuses to start without SMTP_HOST)
    smtp_host: str = ""
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # unset: 25, 587 or 465 by SMTP_TLS
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    mail_from: str = ""
    mail_from_name: str = "genhub"
    # A message the server does not take (unreachable, 4xx) is tried again with growing
    # delays for this long after it was queued, then given up on
    mail_give_up_seconds: float = Field(default=3600.0, ge=0.0)
    mail_retry_base_seconds: float = Field(default=30.0, gt=0.0)
    mail_retry_max_seconds: float = Field(default=600.0, gt=0.0)
    mail_sweep_seconds: int = Field(default=30, ge=1)

    # data exports (requestDataExport): archives built by a worker on its disk (MEDIA_TEMP_DIR),
    # stored under exports/, downloadable for data_export_ttl_seconds; at most
    # data_export_allowance exports per user per data_export_window_seconds
    data_export_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    data_export_allowance: int = Field(default=3, ge=1)
    data_export_window_seconds: int = Field(default=24 * 3600, ge=1)
    data_export_max_bytes: int = Field(default=20 * 1024 * 1024 * 1024, ge=1024 * 1024)
    data_export_max_attempts: int = Field(default=3, ge=1, le=20)
    # A worker holds a build this long (renewed every third of it while it works); a failed
    # attempt is retried after data_export_retry_seconds by the sweep, which also deletes
    # expired archives, every data_export_sweep_seconds
    data_export_claim_seconds: float = Field(default=600.0, ge=3.0)
    data_export_retry_seconds: float = Field(default=30.0, ge=0.0)
    data_export_sweep_seconds: int = Field(default=60, ge=1)

    # outgoing webhooks (infrastructure/webhooks/; docs/deploy.md "Webhooks"): http:// URLs are
    # refused in production unless WEBHOOK_ALLOW_HTTP=true; WEBHOOK_ALLOWED_NETWORKS (CIDRs) are
    # reachable despite the address rules (development and tests only: a local receiver)
    webhook_allow_http: bool | None = None
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_dns_timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)  # within the whole attempt's
    # the whole attempt: resolving, connecting, sending, the answer's status and capped body
    webhook_timeout_seconds: float = Field(default=15.0, gt=0.0, le=300.0)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0, le=16 * 1024 * 1024)
    # deliveries one process sends at once
    webhook_concurrency: int = Field(default=50, ge=1, le=1000)

    # uploads
    upload_max_bytes: int = 500 * 1024 * 1024
    upload_allowed_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["image/*", "video/*", "audio/*", "application/pdf", "application/octet-stream"]
    )
    chunk_quota_count: int = 1000
    chunk_quota_bytes: int = 10 * 1024 * 1024 * 1024
    presign_expires_seconds: int = 900
    pending_chunk_ttl_seconds: int = 24 * 3600

    # rate limits (per window)
    rate_limit_window_seconds: int = 60
    rate_limit_login: int = 20
    rate_limit_register: int = 10
    rate_limit_generate: int = 120
    rate_limit_upload: int = 60
    rate_limit_ip_multiplier: int = 5
    # per account (hashed normalised e-mail) and per refresh-token family, whatever the address
    rate_limit_account_window_seconds: int = 900
    rate_limit_login_account: int = 10
    rate_limit_register_account: int = 5
    rate_limit_refresh_family: int = 10
    # requestPasswordReset: per address (IPv6 /64) per RATE_LIMIT_WINDOW_SECONDS, and per e-mail
    # address per RATE_LIMIT_ACCOUNT_WINDOW_SECONDS; resetPassword per address like login
    rate_limit_password_reset: int = 5
    rate_limit_password_reset_account: int = 3

    # catalogue cache
    catalogue_cache_ttl_seconds: int = 60

    # board invitations (addBoardMember): per-user rate (per rate_limit_window_seconds), lifetime, cap per board
    rate_limit_invite: int = 30
    board_invitation_ttl_seconds: int = 14 * 24 * 3600
    board_invitation_max_pending: int = 50

    # webhook endpoints, messages and deliveries (domain/use_cases/webhook_*.py; docs/deploy.md
    # "Webhook deliveries"): endpoints per user; management calls and redeliveries per user per
    # RATE_LIMIT_WINDOW_SECONDS; at most one progress message per generation and target per
    # interval; the retry schedule (seconds between attempts; empty: the standard one of about a
    # day); an attempt's hold (above the sender's whole deadline); how long a new delivery waits
    # for its task before the sweep (every webhook_sweep_seconds) takes it; how long the log is kept
    webhook_max_endpoints: int = Field(default=10, ge=1, le=100)
    rate_limit_webhooks: int = Field(default=30, ge=1)
    rate_limit_webhook_redeliver: int = Field(default=30, ge=1)
    webhook_progress_interval_seconds: float = Field(default=10.0, ge=0.0, le=3600.0)
    webhook_retry_delays_seconds: Annotated[list[float], NoDecode] = Field(default_factory=list, max_length=30)
    webhook_claim_seconds: float = Field(default=120.0, ge=1.0, le=3600.0)
    webhook_dispatch_hold_seconds: float = Field(default=60.0, ge=0.0, le=3600.0)
    webhook_sweep_seconds: int = Field(default=5, ge=1, le=3600)
    webhook_log_retention_days: int = Field(default=30, ge=1, le=3650)

    # observability
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    otel_exporter_otlp_endpoint: str = ""
    otel_service_name: str = "genhub"
    metrics_token: str = ""  # when set, GET /metrics wants `Authorization: Bearer <token>`

    # subscriptions
    subscription_queue_size: int = 256
    ws_keepalive_seconds: float = 15.0
    # Largest WebSocket message accepted (uvicorn's ws_max_size too: larger ones are closed with 1009)
    ws_max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    # permessage-deflate on WebSockets. Off: each compressing connection holds zlib state (tens of
    # KiB; bench/fanout.py), and events are small JSON messages that gain little from it.
    ws_compression: bool = False
    # Garbage collection of the API process on a clock, long-lived objects frozen, a full collection
    # only once the heap grew GC_RECLAIM_GROWTH times (infrastructure/gc_tuning.py). Off: CPython's own.
    gc_pacing: bool = True
    gc_reclaim_growth: float = Field(default=2.0, gt=1.0, le=100.0, allow_inf_nan=False)
    # GraphQL over Server-Sent Events (graph/sse.py): keep-alive comment interval; how long one write may
    # wait for a client that does not read before its stream is dropped; open streams per user per process.
    sse_keepalive_seconds: float = Field(default=12.0, gt=0, le=300)
    sse_write_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    sse_max_streams_per_user: int = Field(default=20, ge=1, le=10_000)

    # demo
    seed_demo: bool | None = None
    demo_email: str = "demo@genhub.local"
    demo_password: str = "demo-password-123"
    demo_credits: int = 1000

    @field_validator("provider_rate_limits", "provider_concurrency")
    @classmethod
    def _provider_limits(cls, value: list[str], info: ValidationInfo) -> list[str]:
        shape = _RATE_LIMIT if info.field_name == "provider_rate_limits" else _CONCURRENCY
        for item in value:
            match = shape.fullmatch(item)
            if match is None or any(int(n) < 1 for n in match.groups()[1:]):
                example = "kie=18/10" if shape is _RATE_LIMIT else "kie=50"
                raise ValueError(f"{item!r} is not name=count like {example!r} (counts of at least 1)")
        return value

    def provider_limits(self) -> dict[str, ProviderLimit]:
        """PROVIDER_RATE_LIMITS and PROVIDER_CONCURRENCY by provider.

        A provider PROVIDER_RATE_LIMITS does not name keeps its own default rate (KIE_RATE_LIMIT,
        REPLICATE_RATE_LIMIT, FAL_RATE_LIMIT per their windows): one count of submits per provider.
        """
        limits: dict[str, ProviderLimit] = {
            "kie": ProviderLimit(rate=self.kie_rate_limit, window_seconds=self.kie_rate_window_seconds),
            "replicate": ProviderLimit(
                rate=self.replicate_rate_limit, window_seconds=self.replicate_rate_window_seconds
            ),
            "fal": ProviderLimit(rate=self.fal_rate_limit, window_seconds=self.fal_rate_window_seconds),
        }
        for item in self.provider_rate_limits:
            name, count, window = cast(re.Match[str], _RATE_LIMIT.fullmatch(item)).groups()
            limits[name] = replace(limits.get(name, ProviderLimit()), rate=int(count), window_seconds=int(window))
        for item in self.provider_concurrency:
            name, count = cast(re.Match[str], _CONCURRENCY.fullmatch(item)).groups()
            limits[name] = replace(limits.get(name, ProviderLimit()), concurrency=int(count))
        return limits

    @field_validator(
        "cors_origins",
        "upload_allowed_types",
        "provider_rate_limits",
        "provider_concurrency",
        "url_signing_previous_secrets",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        # From the environment: comma-separated, or a JSON list (NoDecode: not parsed before this).
        if isinstance(value, str):
            if value.strip().startswith("["):
                try:
                    return json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list: {exc}") from exc
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("url_signing_previous_secrets", mode="after")
    @classmethod
    def _previous_secrets_are_secrets(cls, value: list[str]) -> list[str]:
        # An empty entry (a JSON list with "", a stray comma) is no secret at all: dropped. A short one would
        # keep accepting callback URLs signed under a guessable key: refused, as URL_SIGNING_SECRET is.
        kept = [entry.strip() for entry in value if entry.strip()]
        for position, entry in enumerate(kept):
            if len(entry) < MIN_URL_SIGNING_SECRET_LENGTH:
                raise ValueError(
                    f"entry {position} is {len(entry)} characters; each must be at least "
                    f"{MIN_URL_SIGNING_SECRET_LENGTH}, as URL_SIGNING_SECRET"
                )
        return kept

    @field_validator(
        "local_uploads_path", "local_outputs_path", "local_thumbnails_path", "local_exports_path", mode="before"
    )
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        # `LOCAL_OUTPUTS_PATH=` means "no area of its own", not the working directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("fal_queue_base_url", "fal_jwks_url", mode="after")
    @classmethod
    def _fal_http_url(cls, value: str) -> str:
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError("must be an http(s) URL without query or fragment")
        return value.strip()

    @field_validator("database_url", mode="after")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        """Platforms hand out libpq URLs (postgres://, postgresql://, ?sslmode=); asyncpg needs its own form."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                value = "postgresql+asyncpg://" + value[len(prefix) :]
        if value.startswith("postgresql+asyncpg://"):
            value = re.sub(r"([?&])sslmode=", r"\1ssl=", value)
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _cidr_list(cls, value: object) -> object:
        """Comma-separated (`127.0.0.1/32,::1/128`) or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("webhook_allowed_networks", mode="after")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return [str(network) for network in parse_networks(value)]

    @field_validator("webhook_retry_delays_seconds", mode="before")
    @classmethod
    def _delays_as_text(cls, value: object) -> object:
        """A JSON list (`[5, 30]`) or comma-separated seconds (`5,30`); empty: the standard schedule."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_delays_seconds", mode="after")
    @classmethod
    def _positive_delays(cls, value: list[float]) -> list[float]:
        if any(not 0 < delay <= 7 * 24 * 3600 for delay in value):
            raise ValueError("WEBHOOK_RETRY_DELAYS_SECONDS: each delay is more than 0 and at most a week")
        return value

    @field_validator("replicate_webhook_secret", mode="after")
    @classmethod
    def _replicate_webhook_secret(cls, value: str) -> str:
        value = value.strip()
        if value:
            secret_key(value)  # ValueError: not whsec_ and base64 of a sound key
        return value

    @field_validator("replicate_base_url", mode="after")
    @classmethod
    def _replicate_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("REPLICATE_BASE_URL is an http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("mail_from", mode="after")
    @classmethod
    def _one_plain_address(cls, value: str) -> str:
        if value and not MAIL_ADDRESS.fullmatch(value):
            raise ValueError("MAIL_FROM must be one plain address (name@example.com), without a display name")
        return value

    @field_validator("mail_from_name", mode="after")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n"):
            raise ValueError("MAIL_FROM_NAME must be one line")
        return value

    @field_validator("trusted_documents_manifest", mode="before")
    @classmethod
    def _empty_manifest_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _trusted_only_needs_a_manifest(self) -> Settings:
        if self.trusted_documents_only and self.trusted_documents_manifest is None:
            raise ValueError("TRUSTED_DOCUMENTS_ONLY needs TRUSTED_DOCUMENTS_MANIFEST (the path of the manifest)")
        return self

    @model_validator(mode="after")
    def _renewal_well_under_the_lease(self) -> Settings:
        """Three renewals fit in one lease, so a late one (a busy loop, a slow round trip) never loses it."""
        if self.task_lease_renew_seconds * LEASE_RENEWALS_PER_LEASE > self.task_lease_seconds:
            raise ValueError(
                f"TASK_LEASE_RENEW_SECONDS ({self.task_lease_renew_seconds:g}) must be at most "
                f"TASK_LEASE_SECONDS / {LEASE_RENEWALS_PER_LEASE} ({self.task_lease_seconds:g} / "
                f"{LEASE_RENEWALS_PER_LEASE})"
            )
        return self

    @model_validator(mode="after")
    def _slot_lease_outlasts_its_sweeps(self) -> Settings:
        """The slot sweep (every whole POLL_INTERVAL_SECONDS, rounded up) renews what runs: a lease of three sweeps
        survives a late or failed one, so a running generation's slot never lapses between them. Slots are
        only taken for providers PROVIDER_CONCURRENCY limits: without it the lease means nothing."""
        sweep = max(1, math.ceil(self.poll_interval_seconds))
        if self.provider_concurrency and self.provider_slot_lease_seconds < SLOT_SWEEPS_PER_LEASE * sweep:
            raise ValueError(
                f"PROVIDER_SLOT_LEASE_SECONDS ({self.provider_slot_lease_seconds:g}) must be at least "
                f"{SLOT_SWEEPS_PER_LEASE} slot sweeps ({SLOT_SWEEPS_PER_LEASE} x {sweep} s: POLL_INTERVAL_SECONDS "
                "rounded up)"
            )
        return self

    @model_validator(mode="after")
    def _webhook_claim_outlasts_an_attempt(self) -> Settings:
        """An attempt's hold must outlast the sender's whole deadline, or a second worker sends it meanwhile."""
        if self.webhook_claim_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                f"WEBHOOK_CLAIM_SECONDS ({self.webhook_claim_seconds:g}) must be more than "
                f"WEBHOOK_TIMEOUT_SECONDS ({self.webhook_timeout_seconds:g})"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'genhub.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_storage_path(self) -> Path:
        return self.local_storage_path or self.data_dir / "chunks"

    @property
    def effective_password_reset_url(self) -> str:
        return self.password_reset_url or self.public_base_url.rstrip("/") + "/demo#reset={token}"

    @property
    def effective_jwt_secret(self) -> str:
        """JWT_SECRET, or a random one drawn on first start and kept in the data directory (never a published one)."""
        return self.jwt_secret or local_secret(self.data_dir, "jwt-secret")

    @property
    def effective_url_secret(self) -> str:
        """URL_SIGNING_SECRET; else derived from the configured JWT key (every replica alike); else drawn locally."""
        if self.url_signing_secret:
            return self.url_signing_secret
        configured = self.jwt_secret or self.jwt_private_key
        if configured:
            return hmac.new(configured.encode(), b"genhub url signing", hashlib.sha256).hexdigest()
        return local_secret(self.data_dir, "url-signing-secret")

    def purpose_secret(self, purpose: str) -> str:
        """A key of its own for one use of the URL secret (URL signing, reset tokens, throttle keys):
        HMAC(secret, "genhub/v1/<purpose>"). Nothing HMACs client text with the secret itself, so no
        hash an attacker can ask for (an e-mail's throttle key) is ever a key of another purpose."""
        label = f"genhub/v1/{purpose}".encode()
        return hmac.new(self.effective_url_secret.encode(), label, hashlib.sha256).hexdigest()

    def previous_purpose_secrets(self, purpose: str) -> tuple[str, ...]:
        """The keys `purpose_secret` gave under each URL_SIGNING_PREVIOUS_SECRETS entry, read as a former
        URL_SIGNING_SECRET and as a former JWT secret it was derived from."""
        label = f"genhub/v1/{purpose}".encode()
        keys: list[str] = []
        for old in self.url_signing_previous_secrets:
            derived = hmac.new(old.encode(), b"genhub url signing", hashlib.sha256).hexdigest()
            for secret in (old, derived):
                key = hmac.new(secret.encode(), label, hashlib.sha256).hexdigest()
                if key != self.purpose_secret(purpose) and key not in keys:
                    keys.append(key)
        return tuple(keys)

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp_port or SMTP_PORTS[self.smtp_tls]

    @property
    def effective_mail_from(self) -> str:
        return self.mail_from or DEV_MAIL_FROM

    @property
    def mail_outbox_enabled(self) -> bool:
        """Mail goes to DATA_DIR/outbox (and /dev/outbox shows it): no SMTP server, not production."""
        return not self.smtp_host and not self.is_production

    @property
    def webhook_http_allowed(self) -> bool:
        """http:// webhook URLs: allowed outside production, in production only when set explicitly."""
        return self.webhook_allow_http if self.webhook_allow_http is not None else not self.is_production

    @property
    def graphiql_enabled(self) -> bool:
        if self.trusted_documents_only:  # GraphiQL sends ad-hoc documents, which would all be refused
            return False
        return self.graphiql if self.graphiql is not None else not self.is_production

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else not self.is_production

    @property
    def should_seed_demo(self) -> bool:
        return self.seed_demo if self.seed_demo is not None else (self.environment == "development" and self.is_sqlite)

    def production_problems(self) -> list[str]:
        """What stops a production start, naming each variable."""
        problems: list[str] = []
        if not self.is_production:
            return problems
        if not self.database_url:
            problems.append("DATABASE_URL must be set (postgresql+asyncpg://...)")
        if not self.redis_url:
            problems.append("REDIS_URL must be set (redis://...)")
        if self.jwt_algorithm == "HS256":
            if not self.jwt_secret or self.jwt_secret == DEV_JWT_SECRET:
                problems.append("JWT_SECRET must be set")
            elif len(self.jwt_secret) < MIN_JWT_SECRET_LENGTH:
                problems.append(f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters")
        elif not (self.jwt_private_key and self.jwt_public_key):
            problems.append("JWT_PRIVATE_KEY and JWT_PUBLIC_KEY must be set for RS256")
        if self.storage_backend == "local" and self.local_storage_path is None:
            problems.append("STORAGE_BACKEND=s3 (with S3_* variables) or an explicit LOCAL_STORAGE_PATH must be set")
        if self.storage_backend == "s3" and not (self.s3_access_key_id and self.s3_secret_access_key):
            problems.append("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set for STORAGE_BACKEND=s3")
        if not self.smtp_host:
            problems.append("SMTP_HOST must be set (password resets and export links are sent by e-mail)")
        if not self.mail_from:
            problems.append("MAIL_FROM must be set (the sender address of the product's e-mail)")
        if self.smtp_host and self.smtp_tls == "none" and self.smtp_password:
            problems.append("SMTP_TLS=none would send SMTP_PASSWORD in the clear: use starttls or tls")
        if self.url_signing_secret and len(self.url_signing_secret) < MIN_URL_SIGNING_SECRET_LENGTH:
            problems.append(
                f"URL_SIGNING_SECRET must be at least {MIN_URL_SIGNING_SECRET_LENGTH} characters (or empty)"
            )
        if self.metrics_token and len(self.metrics_token) < MIN_METRICS_TOKEN_LENGTH:
            problems.append(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters (or empty)")
        return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
