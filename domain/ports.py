"""Ports: what the use cases need from the outside world, as Protocols.

Implementations live in `infrastructure/`; unit tests use small fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from domain.emails import EmailMessage, QueuedEmail
from domain.events import Event
from domain.media import MediaInfo, MediaLimits, Thumbnail
from domain.provider_health import ProviderHealth

# ---------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One object found by listing a prefix: its key, size, and when it was last written."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


class ObjectStorage(Protocol):
    """Keys are produced by the domain (never from user input).

    Every method raises `domain.errors.StorageUnavailable` when the backend cannot
    be reached; `put_stream` raises `domain.errors.ObjectTooLarge` (and stores
    nothing) when the data exceeds `max_size`.
    """

    backend_name: str

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject: ...

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def sha256_of(self, key: str) -> str: ...

    def open_read(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest: ...

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256: str | None, expires_in: int
    ) -> PresignedRequest: ...

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        """Freeze what was PUT to `key` through its presigned URL, so completion verifies bytes that stay.

        Returns the key of the frozen object: `key` itself when the backend refuses
        every later PUT to it (local), or `copy_key`, a server-side copy that no URL
        was ever issued for (S3). None when nothing was uploaded to `key`. Raises
        `domain.errors.InvalidState` while another completion holds the seal.
        """
        ...

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        """Undo `seal_upload` for a completion that did not finish: PUTs to `key` are taken again.

        `discard` also deletes what was uploaded (wrong bytes: a retry starts clean).
        """
        ...

    async def check(self) -> None: ...

    def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        """Every object whose key starts with `prefix` (a kind's first segment and `/`), in no set order;
        with several areas, an object held in two is listed twice."""
        ...


# ---------------------------------------------------------------- media


class SpooledMedia(Protocol):
    """A file held on the worker's local disk while it is checked and copied, verified on arrival."""

    size: int
    sha256: str
    info: MediaInfo

    def read(self) -> AsyncIterator[bytes]:
        """The bytes again, from the start (each call is a new pass)."""
        ...

    async def thumbnail(self, *, max_side: int, quality: int) -> Thumbnail:
        """A still of it (a poster frame of a video), at most `max_side` on its long side.

        Raises `domain.media.MediaRejected` when it cannot be decoded.
        """
        ...


class MediaWorkshop(Protocol):
    """Receives media from an untrusted source onto local disk, then inspects and converts it."""

    def spool(self, data: AsyncIterator[bytes], *, limits: MediaLimits) -> AbstractAsyncContextManager[SpooledMedia]:
        """Stream `data` to a temporary file (never whole in memory), then sniff and probe it.

        Entering raises `domain.media.MediaRejected` (empty, unsupported type, truncated,
        over a limit of `limits`); leaving deletes the file. Errors of `data` itself (a
        provider's download failing) propagate unchanged.
        """
        ...


# ---------------------------------------------------------------- e-mail


class Mailer(Protocol):
    """Delivers one message. Raises `domain.emails.MailUndeliverable` when the server refuses it
    for good, `domain.errors.ServiceUnavailable` when it cannot be reached (a retry may work)."""

    async def send(self, message: EmailMessage) -> None: ...


class OutboundMail(Protocol):
    """The record of every message workers deliver (outbound_emails); each call is its own transaction.
    Times are the database's clock."""

    async def record(self, key: str, message: EmailMessage, *, give_up_after: timedelta) -> uuid.UUID:
        """The message's id: a new pending record, or the one already recorded under `key`."""
        ...

    async def claim(self, email_id: uuid.UUID, *, hold: timedelta) -> QueuedEmail | None:
        """Hold a pending, due, unheld message for `hold` and count the attempt; None if it is not one."""
        ...

    async def settle(self, email_id: uuid.UUID, *, state: str, error: str | None = None) -> None:
        """Sent, undeliverable or failed: final, and the body is dropped."""
        ...

    async def retry_later(self, email_id: uuid.UUID, *, after: timedelta, error: str) -> None:
        """Release the hold; the message is due again `after` from now."""
        ...

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        """Pending messages due now and held by nobody, the longest waiting first."""
        ...

    async def purge(self, *, settled_before: timedelta) -> int:
        """Delete records settled longer ago than that; how many."""
        ...


# ---------------------------------------------------------------- providers

ProviderState = Literal["pending", "running", "succeeded", "failed"]


class ProviderError(Exception):
    """A provider call failed. `retryable` tells transient (429, 5xx, timeout) from permanent.

    On submit, `nothing_started` says the failure proves no job exists at the provider (it
    refused before taking the job: 429, maintenance, a server error answered, a connection never
    made); only then may another route be tried. A timeout after the request was sent, or a 2xx
    answer that does not parse, may have left a job there: those leave it False. `our_config` says our
    credentials or route configuration for that provider are wrong (401/403, an unknown model):
    nothing started, and the next route may work.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        nothing_started: bool = False,
        our_config: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.our_config = our_config
        self.nothing_started = nothing_started or our_config


@dataclass(frozen=True, slots=True)
class ProviderJob:
    generation_id: uuid.UUID
    provider_model: str
    prompt: str
    params: Mapping[str, Any]
    input_urls: Sequence[str] = ()
    callback_url: str | None = None
    #: The query naming the generation in any callback URL (domain/provider_callbacks.py): already in
    #: `callback_url`; a provider with a callback URL of its own (fal) adds it to that one.
    callback_query: Mapping[str, str] = field(default_factory=dict)
    #: The model's kind ("image" or "video", `domain.catalogue.ModelKind`): what to produce.
    kind: str = "image"
    #: When the generation expires: a provider that takes a run deadline (Replicate's
    #: `Cancel-After`, fal's `X-Fal-Request-Timeout`) is given what is left of it.
    deadline_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    state: ProviderState
    progress: float | None = None
    output_urls: Sequence[str] = ()
    error_code: str | None = None
    error_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderCallback:
    external_id: str
    status: ProviderStatus


class Provider(Protocol):
    name: str
    supports_cancel: bool

    async def submit(self, job: ProviderJob) -> str:
        """Start a job; returns the provider's task id. Raises ProviderError."""
        ...

    async def status(self, external_id: str) -> ProviderStatus: ...

    async def cancel(self, external_id: str) -> None: ...

    def download(self, url: str) -> AsyncIterator[bytes]:
        """Stream one output (result URLs expire: copy at once)."""
        ...

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        """Verify the signature and decode a callback; raises PermissionError when it is not genuine."""
        ...


@runtime_checkable
class AsyncCallbackVerifier(Protocol):
    """A provider whose callbacks take I/O to verify (published signing keys) or read the callback URL's query.

    Optional: the callback use case prefers it over `Provider.parse_callback` when present.
    """

    async def verify_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> ProviderCallback:
        """As `parse_callback`; may also raise ServiceUnavailable (the keys cannot be fetched yet)."""
        ...


@runtime_checkable
class CallbackBinding(Protocol):
    """A provider whose task id is built from its callback URL's query (fal's `app`): those parameters are put
    in the URL by us, under our MAC (domain/provider_callbacks.py). Optional, like `JobLookup`."""

    def callback_bound(self, provider_model: str) -> Mapping[str, str]:
        """The query parameters the callback URL of a job of `provider_model` must carry ({} when unknown)."""
        ...


@dataclass(frozen=True, slots=True)
class JobSearch:
    """What a provider's list says of an uncertain submit's job: the task ids of the jobs that match it
    (`candidates`, newest first), and whether the list was read back to `since` (`complete`). Only a
    complete search with no candidate proves the job absent."""

    candidates: tuple[str, ...] = ()
    complete: bool = True


@runtime_checkable
class JobLookup(Protocol):
    """A provider that can list the jobs it holds (Replicate): after an uncertain submit, the job is looked
    up before it is sent again (domain/use_cases/routed_submission.py).

    Optional, like `AsyncCallbackVerifier`.
    """

    async def find_job(self, job: ProviderJob, *, since: datetime) -> JobSearch:
        """The jobs created since `since` that match `job` (its generation); raises ProviderError."""
        ...


class CircuitBreaker(Protocol):
    """Per-provider circuit across every worker (domain/provider_health.py)."""

    async def allow(self, provider: str) -> bool:
        """Whether a submit may go to `provider` now (closed; or half-open and this is the probe)."""
        ...

    async def record(self, provider: str, *, ok: bool) -> None:
        """A submit's outcome: `ok` closes the circuit, a failure counts towards opening it."""
        ...

    async def health(self, providers: Sequence[str]) -> list[ProviderHealth]:
        """Each provider's circuit and recent outcomes (`running` left 0: the database counts it)."""
        ...


class ProviderSlots(Protocol):
    """In-flight slots per provider (PROVIDER_CONCURRENCY), shared by every worker.

    A generation holds its provider's slot from its submit until it ends there
    (domain/use_cases/provider_slots.py): at most one slot per generation, taken under the `token`
    of the submit claim that took it (a later claim of the same generation takes it over). Each
    slot has a lease: one nobody renews (its worker died, its release was lost) frees itself when
    the lease runs out. Times are the store's own clock.

    Each provider has a waiting line beside its slots, changed atomically with them: a generation refused
    for a full provider takes a ticket (the time of its first refusal, kept across its tries) whose place
    lapses unless it tries again within `wait`. A slot goes to a generation only while the others holding
    one plus the live waiters ahead of it (every live waiter, for one not in line) are fewer than the limit.
    Taking it keeps the ticket (its holder is not counted ahead of anyone): `leave` ends the wait, once a
    provider was asked or took the job, so a slot given back unused keeps the generation's place.
    """

    async def acquire(
        self,
        provider: str,
        holder: uuid.UUID,
        *,
        limit: int,
        lease: timedelta,
        token: uuid.UUID | None = None,
        wait: timedelta | None = None,
    ) -> bool:
        """Take (or renew, or take over from an earlier claim of `holder`) `holder`'s slot under `token` when
        fewer than `limit` others hold one or wait ahead of it; atomic across workers. Refused, `holder` takes
        (or keeps) its place in the line, live for `wait` from now (None: it does not join the line)."""
        ...

    async def leave(self, holder: uuid.UUID, *, keep: Collection[str] = ()) -> None:
        """`holder` leaves every provider's line it stands in, except the lines of `keep`."""
        ...

    async def waiters(self, provider: str) -> dict[uuid.UUID, float]:
        """The live waiters of `provider`'s line, each with its ticket (its place: earlier goes first). A ticket is
        the store's own time (Redis: milliseconds of its clock; in memory: seconds of the process's): compare them
        within one store only."""
        ...

    async def dismiss(self, provider: str, waiters: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        """Take `waiters` out of `provider`'s line (they no longer wait); the live waiters left, as `waiters`."""
        ...

    async def release(self, provider: str, holder: uuid.UUID, *, token: uuid.UUID | None = None) -> None:
        """Free `holder`'s slot: only while `token`'s claim holds it (a later claim keeps it), or whichever
        claim holds it when `token` is None (the generation ended). None held: nothing."""
        ...

    async def holders(self, provider: str) -> dict[uuid.UUID, float]:
        """Who holds a live slot, each with its lease's end (a version: `reconcile` drops it only unchanged)."""
        ...

    async def reconcile(
        self,
        provider: str,
        *,
        renew: Sequence[uuid.UUID],
        add: Sequence[uuid.UUID],
        stale: Mapping[uuid.UUID, float],
        lease: timedelta,
    ) -> None:
        """Renew the slots of `renew` that are still held (one freed meanwhile stays free); hold one for each of
        `add` that holds none, whatever the limit (they run there); free each of `stale` whose lease end is still
        the one read (a holder that took its slot again since keeps it)."""
        ...


class ProviderRegistry(Protocol):
    def get(self, name: str) -> Provider: ...


# ---------------------------------------------------------------- fan-out and jobs


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publish in order; adapters may send them together (one round trip)."""
        ...


class JobQueue(Protocol):
    async def enqueue(self, task_name: str, **kwargs: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class RateBucket:
    """A sliding window: at most `limit` hits per `window_seconds` in the bucket `name`."""

    name: str
    limit: int
    window_seconds: int


class RateLimiter(Protocol):
    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        """Count one hit; returns 0 when allowed, else seconds until the next slot frees."""
        ...

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        """Count one hit in every bucket, or in none when any is full: 0, else the longest wait in seconds."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---------------------------------------------------------------- identity


class ResetTokens(Protocol):
    def token(self, reset_id: uuid.UUID) -> str:
        """The secret token of the password reset `reset_id`: derived with a server key, the same each
        time, so it is neither stored (only its hash) nor queued (the mail task derives it again)."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str | None, password: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class IssuedAccess:
    token: str
    expires_in: int


class TokenIssuer(Protocol):
    refresh_ttl: int

    def issue_access(
        self, user_id: uuid.UUID, role: Any, *, session_id: uuid.UUID | None = None, session_version: int = 0
    ) -> Any:
        """Returns an object with `token` and `expires_in`; the token carries the session and its version."""
        ...

    @staticmethod
    def new_refresh_token() -> tuple[str, str]: ...


class AccessRevocations(Protocol):
    async def announce(self, user_id: uuid.UUID, *, api_key: uuid.UUID | None = None) -> None:
        """After a commit that changed the user's AccessState (or revoked the user's key `api_key`):
        every process forgets what it remembered of it and checks the user's open connections.
        Best effort (never raises): a process that misses it re-reads within the access gate's TTL."""
        ...


class AccessVerifier(Protocol):
    def verify_access(self, token: str) -> tuple[Any, datetime]:
        """The token's principal and expiry; raises Unauthenticated on any defect."""
        ...


# ---------------------------------------------------------------- catalogue cache


class CatalogueReader(Protocol):
    """Read-through cache of models and presets; `invalidate` reaches every replica.

    `model`, `preset`, `models`, `presets` are for reading and may answer from an older
    snapshot; `current_model` and `current_preset` are for starting a generation and never
    answer from a snapshot older than an invalidation this process has seen (ServiceUnavailable
    when the catalogue cannot be read).
    """

    async def model(self, model_id: uuid.UUID) -> Any | None: ...
    async def preset(self, preset_id: uuid.UUID) -> Any | None: ...
    async def current_model(self, model_id: uuid.UUID) -> Any | None: ...
    async def current_preset(self, preset_id: uuid.UUID) -> Any | None: ...
    async def models(self) -> list[Any]: ...
    async def presets(self) -> list[Any]: ...
    async def invalidate(self) -> None: ...
