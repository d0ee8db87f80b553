"""Repository and unit-of-work ports: the only way use cases reach persisted state."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.audit import AuditEntry, AuditFilter
from domain.boards import Board, BoardMember, BoardRole, MemberBoard, Membership
from domain.catalogue import AiModel, ModelKind, Preset
from domain.chunks import Chunk
from domain.credits import CreditBalance, LedgerEntry
from domain.generations import Generation, GenerationStatus
from domain.invitations import BoardInvitation, InvitationView
from domain.media import MediaInfo
from domain.pagination import Page, PageRequest
from domain.provider_attempts import ProviderAttempt
from domain.users import AccessState, Role, User
from domain.webhook_ports import WebhookRepository


@dataclass(frozen=True, slots=True)
class PendingReset:
    """A live password reset, as its e-mail is sent: the account's address, the token's stored hash."""

    email: str
    token_hash: str


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    token_hash: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Asset:
    id: uuid.UUID
    generation_id: uuid.UUID
    kind: str
    position: int
    object_key: str
    content_type: str
    size: int
    created_at: datetime
    sha256: str | None = None
    # What probing the bytes found (null for assets stored before outputs were verified).
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    # A thumbnail's output; null for other kinds.
    source_id: uuid.UUID | None = None
    # An output's thumbnail: domain.media.ThumbnailState value; null for other kinds.
    thumbnail_state: str | None = None
    thumbnail_attempts: int = 0
    thumbnail_error: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationFilter:
    statuses: frozenset[GenerationStatus] = frozenset()
    board_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None


class UserRepository(Protocol):
    async def get(self, user_id: uuid.UUID) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]: ...
    async def add(self, user: User) -> None:
        """Raises EmailTaken when the e-mail exists."""
        ...

    async def set_role(self, user_id: uuid.UUID, role: Role) -> None: ...
    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None: ...
    async def lock(self, user_id: uuid.UUID) -> User | None:
        """The user, their row locked until the transaction ends (one account deletion at a time); rows that
        reference the user may still be inserted meanwhile."""
        ...

    async def hold(self, user_id: uuid.UUID) -> User | None:
        """The user as committed now, their row held (shared) until the transaction ends: sign-in and
        rotation hold it while they add a refresh token, so a revocation (which takes the row itself,
        by `lock` or an update of it, before revoking) waits for them and then sees their token.
        Holders do not wait for each other."""
        ...

    async def tombstone(self, user_id: uuid.UUID, *, email: str, at: datetime) -> None:
        """Anonymise a deleted account: `email` (an unusable unique value) instead of theirs, no password,
        `deleted_at` set; every e-mail queued or kept for their address deleted. The row stays: the ledger
        names it."""

    async def access_state(self, user_id: uuid.UUID, *, ended_since: datetime) -> AccessState | None:
        """The user's AccessState (sessions ended at or after `ended_since`), None when there is no such user."""
        ...

    async def end_sessions(self, user_id: uuid.UUID, at: datetime) -> int | None:
        """Bump the session version (sessions_valid_after = at); the new version, None when no such user."""
        ...

    async def set_suspended(self, user_id: uuid.UUID, at: datetime | None) -> bool:
        """Suspend since `at`, or reinstate (None); False when there is no such user."""
        ...


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as the admin pages list them: the account and its credits."""

    user: User
    balance: CreditBalance


class UserDirectory(Protocol):
    """The admins' reads of accounts (the users' own reads go through the other repositories)."""

    async def search(self, *, email_contains: str | None, page: PageRequest) -> Page[UserSummary]:
        """Users whose e-mail contains `email_contains` (case-insensitive, literally: `%`, `_` and `\\`
        match only themselves), newest first, with their credits. One read."""
        ...

    async def summary(self, user_id: uuid.UUID) -> UserSummary | None: ...
    async def generations_of(self, user_id: uuid.UUID, page: PageRequest) -> Page[Generation]:
        """The user's own generations (not their boards' others), newest first."""
        ...


class AuditLog(Protocol):
    """Append-only: entries are added and read, never changed or deleted."""

    async def add(self, entry: AuditEntry) -> None: ...
    async def page(self, flt: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        """Newest first."""
        ...


class RefreshTokenRepository(Protocol):
    async def add(self, record: RefreshTokenRecord) -> None: ...
    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None: ...
    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        """Marks an unused, unrevoked token used; False when somebody used it first."""
        ...

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None: ...
    async def delete_all_of(self, user_id: uuid.UUID) -> int:
        """Every refresh token of the user (a deleted account's): how many went."""

    async def revoke_family_of(self, user_id: uuid.UUID, family_id: uuid.UUID, at: datetime) -> None:
        """Revoke the family if it is the user's (someone else's is left alone)."""
        ...

    async def revoke_all(self, user_id: uuid.UUID, at: datetime, *, keep_family: uuid.UUID | None = None) -> int:
        """Revoke every live refresh token of the user but `keep_family`'s; how many were revoked.

        Every revocation (this, `revoke_family`, `revoke_family_of`) runs after its transaction took the
        user's row (users.lock, or an update of the row): sign-ins and rotations in flight hold that row
        (users.hold), so the revocation waits for them and its statement sees the tokens they added."""
        ...


class PasswordResetRepository(Protocol):
    async def issue(
        self, email: str, *, reset_id: uuid.UUID, token_hash: str, at: datetime, expires_at: datetime
    ) -> uuid.UUID | None:
        """A new reset for the live account with this e-mail, its older unused ones used up; the
        account's id, or None when there is none (the same work either way: no timing tells)."""
        ...

    async def pending(self, reset_id: uuid.UUID, at: datetime) -> PendingReset | None:
        """The reset `reset_id` when it is unused and unexpired and its account live, else None."""
        ...

    async def owner(self, token_hash: str) -> uuid.UUID | None:
        """The user of the reset with this token, used or not, without locking anything; else None."""
        ...

    async def use(self, token_hash: str, at: datetime) -> uuid.UUID | None:
        """Use up an unused, unexpired token and the user's other unused ones: its user, or None.
        Of concurrent uses of one token exactly one gets the user."""
        ...

    async def delete_all_of(self, user_id: uuid.UUID) -> int:
        """Every reset of the user, used or not (a deleted account's): how many went."""
        ...


class CreditRepository(Protocol):
    async def ensure_account(self, user_id: uuid.UUID) -> None: ...
    async def balance(self, user_id: uuid.UUID) -> CreditBalance: ...
    async def add_entry(self, entry: LedgerEntry) -> bool:
        """Insert a ledger row; False (and nothing written) when its idempotency key exists."""
        ...

    async def change(self, user_id: uuid.UUID, *, balance_delta: int, reserved_delta: int) -> CreditBalance | None:
        """Atomically apply deltas unless the result would break the invariants (None then)."""
        ...

    async def entry_by_key(self, key: str) -> LedgerEntry | None: ...
    async def ledger_page(self, user_id: uuid.UUID, page: PageRequest) -> Page[LedgerEntry]: ...
    async def ledger_totals(self, user_id: uuid.UUID) -> CreditBalance: ...
    async def open_reservation(self, generation_id: uuid.UUID) -> int: ...


class CatalogueRepository(Protocol):
    async def list_models(self, kind: ModelKind | None = None, *, include_inactive: bool = False) -> list[AiModel]: ...
    async def get_model(self, model_id: uuid.UUID) -> AiModel | None: ...
    async def get_models(self, ids: Sequence[uuid.UUID]) -> list[AiModel]: ...
    async def get_model_by_slug(self, slug: str) -> AiModel | None: ...
    async def save_model(self, model: AiModel) -> AiModel: ...
    async def list_presets(self, model_id: uuid.UUID | None = None) -> list[Preset]: ...
    async def get_preset(self, preset_id: uuid.UUID) -> Preset | None: ...
    async def get_presets(self, ids: Sequence[uuid.UUID]) -> list[Preset]: ...
    async def save_preset(self, preset: Preset) -> Preset: ...
    async def lock_catalogue(self) -> None:
        """Until the transaction ends, no other transaction holding this lock writes the catalogue."""
        ...


class AdminSettingsRepository(Protocol):
    async def list(self) -> list[tuple[str, Any]]: ...
    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, *, actor_id: uuid.UUID | None) -> None: ...


class GenerationRepository(Protocol):
    async def add(self, generation: Generation) -> bool:
        """Insert; False when the user's idempotency key is already taken."""
        ...

    async def get(self, generation_id: uuid.UUID) -> Generation | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Generation]: ...
    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Generation | None: ...
    async def transition(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        **fields: Any,
    ) -> Generation | None:
        """Conditional update: only when the current status is one of `sources`."""
        ...

    async def set_progress(self, generation_id: uuid.UUID, progress: float, at: datetime) -> Generation | None: ...
    async def page(self, *, viewer_id: uuid.UUID, flt: GenerationFilter, page: PageRequest) -> Page[Generation]:
        """What the viewer may list: their own generations and those of the boards they are a member of;
        with `flt.board_id`, that board's, and none unless they are a member. One read."""
        ...

    async def board_pages(
        self, *, viewer_id: uuid.UUID, pages: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> list[Page[Generation]]:
        """`page` with each board as the filter, for several (board, page) at once, in order."""
        ...

    async def active(self, *, limit: int, polled_before: datetime | None = None) -> list[Generation]: ...
    async def past_deadline(self, now: datetime, *, limit: int) -> list[Generation]: ...
    async def add_inputs(self, generation_id: uuid.UUID, chunk_ids: Sequence[uuid.UUID]) -> None: ...
    async def inputs_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]: ...
    async def add_asset(self, asset: Asset) -> bool: ...
    async def assets_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Asset]]: ...
    async def get_asset(self, asset_id: uuid.UUID) -> Asset | None: ...
    async def get_assets(self, ids: Sequence[uuid.UUID]) -> list[Asset]: ...
    async def claim_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> Asset | None:
        """Take the output's pending thumbnail under `token` for `claim` from the database's now, counting
        an attempt.

        One compare-and-set: None when it is no longer pending, or another claim runs past now.
        """
        ...

    async def renew_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> bool:
        """Push the claim on the output's thumbnail to `claim` from the database's now, counting nothing;
        False when it is no longer pending (settled meanwhile) or no longer held under `token` (taken over)."""
        ...

    async def release_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, after: timedelta) -> None:
        """A failed attempt under `token`: the still pending output may be claimed again `after` the
        database's now. Nothing when another claim holds it now."""
        ...

    async def settle_thumbnail(
        self,
        asset_id: uuid.UUID,
        *,
        state: str,
        error: str | None = None,
        measured: MediaInfo | None = None,
        content_type: str | None = None,
        token: uuid.UUID | None = None,
    ) -> bool:
        """Move the output's thumbnail from pending to `state` (ready, failed) with `error`; False when it
        was not pending, or (given a `token`) no longer held under it. `measured` fills the output's width, height and duration where they are unset;
        `content_type` replaces the output's. Locks the output's generation row before the output's."""
        ...

    async def thumbnail_settled(self, generation_id: uuid.UUID, at: datetime) -> Generation | None:
        """One fewer thumbnail pending on the generation (never below 0); the generation as updated,
        None when none was counted pending."""
        ...

    async def pending_thumbnails(self, *, created_before: datetime, limit: int) -> list[uuid.UUID]:
        """Generations with an output whose thumbnail is pending since before `created_before` and not
        claimed at the database's now: at most `limit`, those waiting longest first."""
        ...

    async def record_provider_task(
        self, generation_id: uuid.UUID, provider: str, external_id: str, state: str, raw: dict[str, Any], at: datetime
    ) -> None:
        """Record (or update) the generation's provider task; raises ProviderTaskTaken, changing nothing, when
        another generation holds that task."""
        ...

    async def find_by_provider_task(self, provider: str, external_id: str) -> Generation | None: ...
    async def record_attempts(self, attempts: Sequence[ProviderAttempt]) -> None:
        """Append provider route attempts (domain/provider_attempts.py)."""
        ...

    async def record_skips(self, attempts: Sequence[ProviderAttempt]) -> datetime:
        """Record an attempt that asked no provider (`attempts` of one generation: routes skipped, or an uncertain
        route's lookup failed or inconclusive): when the generation's latest rows are the same (same routes,
        providers, outcomes and codes), they are extended to this attempt's end instead of new rows being added. Returns since when it has been skipping so (the
        first of those rows' start)."""
        ...

    async def attempts_of(
        self, generation_ids: Sequence[uuid.UUID], *, latest: int | None = None
    ) -> dict[uuid.UUID, list[ProviderAttempt]]:
        """Each generation's attempts, oldest first (absent: none); only its `latest` ones when given."""
        ...

    async def running_by_provider(self) -> dict[str, int]:
        """How many PROCESSING generations each provider runs."""
        ...

    async def on_provider(self, provider: str, ids: Sequence[uuid.UUID]) -> list[Generation]:
        """The generations of `ids` (those that still exist), and every active one naming `provider`
        (PROCESSING there, or SUBMITTING with an uncertain route there): what its slots are checked against."""
        ...

    async def chunk_in_active_use(self, chunk_id: uuid.UUID) -> bool: ...
    async def transition_if(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        expect: dict[str, Any],
        unheld: bool = False,
        **fields: Any,
    ) -> Generation | None:
        """`transition`, and only while each `expect` column still holds its value (a fencing token).

        With `unheld`, also only while no lease runs past the database's now.
        """
        ...

    async def claim_submit(
        self, generation_id: uuid.UUID, *, token: uuid.UUID, at: datetime, lease: timedelta, max_attempts: int
    ) -> Generation | None:
        """QUEUED/SUBMITTING -> SUBMITTING as attempt `submit_attempts` + 1, held by `token` for `lease`.

        One conditional write: None when a lease or a backoff runs past the database's now,
        the deadline passed, or `max_attempts` attempts were made already.
        """
        ...

    async def due(self, now: datetime, *, queued_before: datetime, limit: int) -> list[Generation]:
        """Active generations whose `next_attempt_at` is unset or past, longest waiting first.

        QUEUED ones count only when last updated before `queued_before` (their first
        submit message is presumed in flight until then).
        """
        ...

    async def defer(self, generation_ids: Sequence[uuid.UUID], after: timedelta) -> None:
        """Next poll of the PROCESSING ones among `generation_ids` `after` the database's now.

        A generation a worker holds (a lease running past the database's now) is left
        alone; a lease that ran out is dropped.
        """
        ...

    async def take_lease(
        self, generation_id: uuid.UUID, *, status: GenerationStatus, token: uuid.UUID, lease: timedelta
    ) -> Generation | None:
        """Hold the generation (while in `status`) under `token` for `lease`; None when another lease still runs.

        Lease times are the database's, never the caller's clock.
        """
        ...

    async def renew_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, lease: timedelta) -> bool:
        """Extend the lease `token` holds on the active generation to `lease` from the database's now;
        False when it no longer holds it."""
        ...

    async def release_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, after: timedelta | None) -> bool:
        """Give up the lease `token` holds, the generation due again `after` the database's now (None: at once);
        False when it was not held."""
        ...

    async def lock_many(self, ids: Sequence[uuid.UUID], *, user_id: uuid.UUID) -> list[Generation]:
        """The generations of `ids` that exist and belong to `user_id`, their rows locked until the
        transaction ends (a deletion's read: no worker moves or adds to them meanwhile). Other users'
        rows are neither returned nor locked, so naming them stalls nobody's worker."""
        ...

    async def ids_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Every generation of the user (all statuses)."""
        ...

    async def delete_many(self, ids: Sequence[uuid.UUID]) -> int:
        """Delete the generations with their inputs' links, assets and provider tasks; the ledger's rows
        stay, no longer pointing at them. How many went."""
        ...


class BoardRepository(Protocol):
    async def add(self, board: Board) -> None: ...
    async def get(self, board_id: uuid.UUID) -> Board | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Board]: ...
    async def with_role(self, board_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Board, BoardRole] | None:
        """The board and the user's role on it; None when it does not exist or they are not a member."""
        ...

    async def role_of(self, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardRole | None: ...
    async def board_ids_of(self, user_id: uuid.UUID) -> list[uuid.UUID]: ...
    async def for_user(self, user_id: uuid.UUID) -> list[Board]: ...
    async def set_member(self, board_id: uuid.UUID, user_id: uuid.UUID, role: BoardRole, at: datetime) -> None: ...
    async def remove_member(self, board_id: uuid.UUID, user_id: uuid.UUID) -> bool: ...
    async def members_of(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BoardMember]]: ...
    async def page_for_user(self, user_id: uuid.UUID, page: PageRequest) -> Page[MemberBoard]:
        """A keyset page of the boards `user_id` belongs to, newest first."""
        ...

    async def count_for_user(self, user_id: uuid.UUID) -> int: ...
    async def member_pages(self, pages: Sequence[tuple[uuid.UUID, PageRequest]]) -> list[Page[Membership]]:
        """A keyset page of each board's members (newest member first), all in one statement."""
        ...

    async def member_counts(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]: ...
    async def lock_members(self, board_id: uuid.UUID) -> list[BoardMember]: ...
    async def rename(self, board_id: uuid.UUID, name: str) -> Board | None: ...
    async def delete(self, board_id: uuid.UUID) -> bool:
        """Delete the board with its memberships and invitations; its generations stay, detached."""
        ...


class BoardInvitationRepository(Protocol):
    """Invitations keyed by (board, normalised e-mail); "open" means not expired at `now`."""

    async def put(self, invitation: BoardInvitation) -> None:
        """Insert, or replace the board's invitation for the same address (a refresh)."""
        ...

    async def get(self, board_id: uuid.UUID, email: str) -> BoardInvitation | None: ...
    async def count_open(self, board_id: uuid.UUID, now: datetime) -> int: ...
    async def delete_expired(self, board_id: uuid.UUID, now: datetime) -> None: ...
    async def take(self, board_id: uuid.UUID, email: str, now: datetime) -> BoardInvitation | None:
        """Delete the open invitation and return it, atomically: of two concurrent takers one gets it."""
        ...

    async def open_for_boards(
        self, board_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, list[BoardInvitation]]: ...
    async def open_for_email(self, email: str, now: datetime) -> list[InvitationView]: ...
    async def delete_for_email(self, email: str) -> int:
        """Every invitation to this (normalised) address, open or expired: how many went."""
        ...


class ChunkRepository(Protocol):
    async def add(self, chunk: Chunk) -> None: ...
    async def get(self, chunk_id: uuid.UUID) -> Chunk | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Chunk]: ...
    async def page(self, user_id: uuid.UUID, page: PageRequest) -> Page[Chunk]: ...
    async def usage(self, user_id: uuid.UUID, *, lock: bool = False) -> tuple[int, int]:
        """(count, bytes) of the user's chunks; `lock` serialises quota checks of one user until commit."""
        ...

    async def mark_ready(self, chunk_id: uuid.UUID, *, object_key: str, size: int, sha256: str) -> Chunk | None:
        """PENDING -> READY with the verified object's key, size and sha256; None when no longer PENDING."""
        ...

    async def delete(self, chunk_id: uuid.UUID) -> bool: ...
    async def stale_pending(self, before: datetime, *, limit: int) -> list[Chunk]: ...
    async def delete_all_of(self, user_id: uuid.UUID) -> list[str]:
        """Delete every chunk of the user; the object keys they held."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimedDeletion:
    """An object a worker now deletes: `attempts` counts this one."""

    object_key: str
    attempts: int


class StorageDeletionRepository(Protocol):
    """The outbox of objects whose rows are gone (written in the row deletion's transaction)."""

    async def add(self, keys: Sequence[str], at: datetime) -> None:
        """Queue `keys`, due at once; a key already queued stays as it is."""
        ...

    async def claim(self, *, limit: int, lease: timedelta) -> list[ClaimedDeletion]:
        """Take up to `limit` due keys for `lease` from the database's now (skipping keys another
        transaction holds), counting an attempt on each: two workers never take the same key at once."""
        ...

    async def done(self, keys: Sequence[str]) -> None: ...
    async def retry(self, key: str, *, after: timedelta, error: str) -> None:
        """A failed attempt: due again `after` the database's now, with why."""
        ...

    async def count(self) -> int: ...
    async def referenced(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` a row still names: an asset, a chunk, a data export, or this outbox itself."""
        ...


class StartStatus(enum.StrEnum):
    STARTED = "started"
    REPLAYED = "replayed"  # the user's idempotency key was used before: nothing written
    MODEL_CHANGED = "model"  # the model is inactive or costs other than the reservation now
    INSUFFICIENT = "insufficient"  # available credits do not cover the reservation
    INPUTS_CHANGED = "inputs"  # an input is no longer one of the user's READY chunks
    BOARD_CHANGED = "board"  # the user is no longer a member of the board who may generate there
    ACCOUNT_GONE = "account"  # the user's account was deleted (a tombstone): nothing written


@dataclass(frozen=True, slots=True)
class StartOutcome:
    status: StartStatus
    generation_id: uuid.UUID | None = None  # STARTED: the new one; REPLAYED: the earlier one
    account: CreditBalance | None = None  # STARTED: after the reservation; INSUFFICIENT: as seen


class GenerationStarter(Protocol):
    """Records a new generation with its credit reservation, atomically.

    Separate from the unit of work because it is one self-contained write: a store may do
    it in a single round trip (PostgreSQL: one function call) instead of a transaction
    of several statements.
    """

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        """Unless the user's idempotency key was used (REPLAYED), in this order: the model is
        active and costs the reservation's amount (0 without one; else MODEL_CHANGED), the available
        credits cover `reservation.amount` (else INSUFFICIENT), the inputs are the user's READY
        chunks (else INPUTS_CHANGED), a board's starter is still its OWNER or EDITOR (else
        BOARD_CHANGED); then insert the generation, its inputs and the reservation's ledger row
        and add the amount to the account's `reserved` (STARTED). A None reservation (a free
        model) moves no credits.

        ServiceUnavailable when the store could not be reached (nothing was written);
        OutcomeUnknown when the start was sent but its reply was lost and the store could not
        tell afterwards whether `generation.id` (or the key's generation) exists.
        """
        ...


class UnitOfWork(Protocol):
    """`async with uow:` opens a transaction; it rolls back unless `commit()` was awaited."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...
    @property
    def password_resets(self) -> PasswordResetRepository: ...
    @property
    def credits(self) -> CreditRepository: ...
    @property
    def catalogue(self) -> CatalogueRepository: ...
    @property
    def admin_settings(self) -> AdminSettingsRepository: ...
    @property
    def generations(self) -> GenerationRepository: ...
    @property
    def boards(self) -> BoardRepository: ...
    @property
    def chunks(self) -> ChunkRepository: ...
    @property
    def invitations(self) -> BoardInvitationRepository: ...
    @property
    def storage_deletions(self) -> StorageDeletionRepository: ...
    @property
    def user_directory(self) -> UserDirectory: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def webhooks(self) -> WebhookRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *args: object) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
