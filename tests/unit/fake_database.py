"""The in-memory database of the unit tests: committed rows, transactions over them, the repositories.

`FakeDatabase` holds the committed rows. A `FakeUnitOfWork` stages its writes in a
`Transaction` that `commit()` applies and leaving `async with` throws away, as the SQL
unit of work does; reads inside it see committed rows overlaid with its own writes.
The repositories mirror domain/repositories.py (and the SQL ones' semantics) and refuse
to run outside `async with uow:`. Nine Protocols make this module long; it holds nothing else.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.audit import AuditEntry, AuditFilter
from domain.boards import Board, BoardMember, BoardRole
from domain.catalogue import AiModel, ModelKind, Preset, deadline_seconds_of
from domain.chunks import Chunk, ChunkStatus
from domain.credits import (
    BALANCE_KINDS,
    MAX_BALANCE,
    RESERVED_KINDS,
    CreditBalance,
    LedgerEntry,
    LedgerKind,
)
from domain.errors import EmailTaken, ProviderTaskTaken
from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.invitations import BoardInvitation, InvitationView
from domain.media import MediaInfo, ThumbnailState
from domain.pagination import Page, PageRequest
from domain.ports import Clock
from domain.provider_attempts import ProviderAttempt
from domain.repositories import (
    Asset,
    GenerationFilter,
    GenerationStarter,
    PendingReset,
    RefreshTokenRecord,
    StartOutcome,
    StartStatus,
    UnitOfWork,
    UnitOfWorkFactory,
    UserSummary,
)
from domain.users import AccessState, Role, User
from tests.unit.fake_pages import newest_first
from tests.unit.fake_webhooks import FakeWebhooks, WebhookTables

# ---------------------------------------------------------------- the database and its transactions


class FakeDatabase:
    """The committed rows: one dict per table (keyed like its primary key), lists for append-only ones."""

    def __init__(self) -> None:
        self.users: dict[uuid.UUID, User] = {}
        self.refresh_tokens: dict[uuid.UUID, RefreshTokenRecord] = {}
        self.sessions_valid_after: dict[uuid.UUID, datetime] = {}  # users.sessions_valid_after
        self.password_resets: dict[str, PasswordResetRecord] = {}  # by token hash (unique)
        self.accounts: dict[uuid.UUID, CreditBalance] = {}
        self.ledger: dict[str, LedgerEntry] = {}  # by idempotency key (unique)
        self.models: dict[uuid.UUID, AiModel] = {}
        self.presets: dict[uuid.UUID, Preset] = {}
        self.settings: dict[str, Any] = {}
        self.generations: dict[uuid.UUID, Generation] = {}
        self.inputs: dict[uuid.UUID, list[uuid.UUID]] = {}  # generation -> chunks, in order
        self.assets: list[Asset] = []  # as inserted; later changes to a row are in asset_changes
        self.asset_changes: dict[uuid.UUID, Asset] = {}
        self.thumbnail_claims: dict[uuid.UUID, datetime] = {}  # output asset -> claimed until (database clock)
        self.thumbnail_claim_tokens: dict[uuid.UUID, uuid.UUID] = {}  # output asset -> its claim's token
        self.provider_tasks: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}
        self.provider_attempts: list[ProviderAttempt] = []  # append-only
        self.boards: dict[uuid.UUID, Board] = {}
        self.members: dict[tuple[uuid.UUID, uuid.UUID], BoardMember] = {}  # insertion order = joined order
        self.chunks: dict[uuid.UUID, Chunk] = {}
        self.invitations: dict[tuple[uuid.UUID, str], BoardInvitation] = {}
        self.audit: list[AuditEntry] = []  # append-only
        webhooks = WebhookTables()  # tests/unit/fake_webhooks.py
        self.webhook_endpoints = webhooks.webhook_endpoints
        self.webhook_secrets = webhooks.webhook_secrets
        self.generation_webhooks = webhooks.generation_webhooks
        self.webhook_messages = webhooks.webhook_messages
        self.webhook_deliveries = webhooks.webhook_deliveries
        self.commits = 0
        self.catalogue_locks = 0  # lock_catalogue() calls (a fake has no concurrent writer to wait for)
        self.fail_next_commit: Exception | None = None  # raised (once) instead of committing
        # The database's own clock, which lease times follow (Fakes sets the workers' clock;
        # a test may give the database another to skew the workers' clocks against it).
        self.clock: Clock = _UtcClock()

    def ledger_of(self, user_id: uuid.UUID) -> list[LedgerEntry]:
        return [e for e in self.ledger.values() if e.user_id == user_id]

    def current_assets(self) -> list[Asset]:
        """The committed asset rows as they are now (inserted, then changed)."""
        return [self.asset_changes.get(a.id, a) for a in self.assets]


_DELETED: Any = object()


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Transaction:
    """Writes staged over a FakeDatabase: read-committed, applied all at once by `apply()`."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._staged: dict[str, dict[Hashable, Any]] = defaultdict(dict)
        self._appended: dict[str, list[Any]] = defaultdict(list)

    def get(self, table: str, key: Hashable) -> Any:
        staged = self._staged[table]
        if key in staged:
            value = staged[key]
            return None if value is _DELETED else value
        return getattr(self.db, table).get(key)

    def rows(self, table: str) -> dict[Any, Any]:
        merged = dict(getattr(self.db, table))
        for key, value in self._staged[table].items():
            if value is _DELETED:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def put(self, table: str, key: Hashable, value: Any) -> None:
        self._staged[table][key] = value

    def delete(self, table: str, key: Hashable) -> bool:
        existed = self.get(table, key) is not None
        self._staged[table][key] = _DELETED
        return existed

    def append(self, table: str, item: Any) -> None:
        self._appended[table].append(item)

    def listed(self, table: str) -> list[Any]:
        return [*getattr(self.db, table), *self._appended[table]]

    def apply(self) -> None:
        for table, staged in self._staged.items():
            committed = getattr(self.db, table)
            for key, value in staged.items():
                if value is _DELETED:
                    committed.pop(key, None)
                else:
                    committed[key] = value
        for table, items in self._appended.items():
            getattr(self.db, table).extend(items)
        self.discard()

    def discard(self) -> None:
        self._staged.clear()
        self._appended.clear()


class _Repository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def tx(self) -> Transaction:
        return self._uow.tx


class FakeUsers(_Repository):
    async def get(self, user_id: uuid.UUID) -> User | None:
        found: User | None = self.tx.get("users", user_id)
        return found

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self.tx.rows("users").values() if u.email == email), None)

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]:
        return [u for i in dict.fromkeys(ids) if (u := self.tx.get("users", i)) is not None]

    async def add(self, user: User) -> None:
        if await self.get_by_email(user.email) is not None:
            raise EmailTaken()
        self.tx.put("users", user.id, user)

    async def set_role(self, user_id: uuid.UUID, role: Role) -> None:
        if (user := await self.get(user_id)) is not None:
            self.tx.put("users", user_id, dataclasses.replace(user, role=role))

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        if (user := await self.get(user_id)) is not None:
            self.tx.put("users", user_id, dataclasses.replace(user, password_hash=password_hash))

    async def lock(self, user_id: uuid.UUID) -> User | None:
        return await self.get(user_id)  # one writer at a time in the fakes: nothing to wait for

    async def hold(self, user_id: uuid.UUID) -> User | None:
        return await self.get(user_id)

    async def access_state(self, user_id: uuid.UUID, *, ended_since: datetime) -> AccessState | None:
        user = await self.get(user_id)
        if user is None or user.deleted_at is not None:
            return None
        ended = frozenset(
            r.family_id
            for r in self.tx.rows("refresh_tokens").values()
            if r.user_id == user_id and r.revoked_at is not None and r.revoked_at >= ended_since
        )
        return AccessState(user.session_version, user.suspended_at is not None, ended)

    async def end_sessions(self, user_id: uuid.UUID, at: datetime) -> int | None:
        user = await self.get(user_id)
        if user is None:
            return None
        self.tx.put("users", user_id, dataclasses.replace(user, session_version=user.session_version + 1))
        self.tx.put("sessions_valid_after", user_id, at)
        return user.session_version + 1

    async def set_suspended(self, user_id: uuid.UUID, at: datetime | None) -> bool:
        user = await self.get(user_id)
        if user is None:
            return False
        since = (user.suspended_at or at) if at is not None else None
        self.tx.put("users", user_id, dataclasses.replace(user, suspended_at=since))
        return True


class FakeUserDirectory(_Repository):
    async def search(self, *, email_contains: str | None, page: PageRequest) -> Page[UserSummary]:
        needle = (email_contains or "").lower()
        users = [u for u in self.tx.rows("users").values() if needle in u.email.lower()]
        found = newest_first(users, page)
        return Page([await self._summary(u) for u in found.items], found.has_next)

    async def summary(self, user_id: uuid.UUID) -> UserSummary | None:
        user: User | None = self.tx.get("users", user_id)
        return await self._summary(user) if user is not None else None

    async def generations_of(self, user_id: uuid.UUID, page: PageRequest) -> Page[Generation]:
        return newest_first([g for g in self.tx.rows("generations").values() if g.user_id == user_id], page)

    async def _summary(self, user: User) -> UserSummary:
        return UserSummary(user, self.tx.get("accounts", user.id) or CreditBalance(0, 0))


class FakeAuditLog(_Repository):
    async def add(self, entry: AuditEntry) -> None:
        self.tx.append("audit", entry)

    async def page(self, flt: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        entries = [
            e
            for e in self.tx.listed("audit")
            if (flt.action is None or e.action is flt.action)
            and (flt.actor_id is None or e.actor_id == flt.actor_id)
            and (flt.target_id is None or e.target_id == flt.target_id)
        ]
        return newest_first(entries, page)


@dataclasses.dataclass(frozen=True, slots=True)
class PasswordResetRecord:
    """A password_resets row (the fake's own: the port speaks in ids and hashes only)."""

    id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class FakePasswordResets(_Repository):
    def _live_user(self, email: str) -> User | None:
        return next((u for u in self.tx.rows("users").values() if u.email == email and u.deleted_at is None), None)

    def _use_up_unused(self, user_id: uuid.UUID, at: datetime) -> None:
        for key, record in list(self.tx.rows("password_resets").items()):
            if record.user_id == user_id and record.used_at is None:
                self.tx.put("password_resets", key, dataclasses.replace(record, used_at=at))

    async def issue(
        self, email: str, *, reset_id: uuid.UUID, token_hash: str, at: datetime, expires_at: datetime
    ) -> uuid.UUID | None:
        user = self._live_user(email)
        if user is None:
            return None
        self._use_up_unused(user.id, at)
        self.tx.put("password_resets", token_hash, PasswordResetRecord(reset_id, user.id, token_hash, at, expires_at))
        return user.id

    async def pending(self, reset_id: uuid.UUID, at: datetime) -> PendingReset | None:
        rows = self.tx.rows("password_resets").values()
        record: PasswordResetRecord | None = next((r for r in rows if r.id == reset_id), None)
        if record is None or record.used_at is not None or record.expires_at <= at:
            return None
        user: User | None = self.tx.get("users", record.user_id)
        live = user is not None and user.deleted_at is None
        return PendingReset(email=user.email, token_hash=record.token_hash) if user is not None and live else None

    async def owner(self, token_hash: str) -> uuid.UUID | None:
        record: PasswordResetRecord | None = self.tx.get("password_resets", token_hash)
        return None if record is None else record.user_id

    async def use(self, token_hash: str, at: datetime) -> uuid.UUID | None:
        record: PasswordResetRecord | None = self.tx.get("password_resets", token_hash)
        if record is None or record.used_at is not None or record.expires_at <= at:
            return None
        self._use_up_unused(record.user_id, at)
        return record.user_id


class FakeRefreshTokens(_Repository):
    async def add(self, record: RefreshTokenRecord) -> None:
        self.tx.put("refresh_tokens", record.id, record)

    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None:
        return next((r for r in self.tx.rows("refresh_tokens").values() if r.token_hash == token_hash), None)

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        record: RefreshTokenRecord | None = self.tx.get("refresh_tokens", token_id)
        if record is None or record.used_at is not None or record.revoked_at is not None:
            return False
        self.tx.put("refresh_tokens", token_id, dataclasses.replace(record, used_at=at))
        return True

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        for record in self.tx.rows("refresh_tokens").values():
            if record.family_id == family_id and record.revoked_at is None:
                self.tx.put("refresh_tokens", record.id, dataclasses.replace(record, revoked_at=at))

    async def revoke_family_of(self, user_id: uuid.UUID, family_id: uuid.UUID, at: datetime) -> None:
        for record in list(self.tx.rows("refresh_tokens").values()):
            if record.family_id == family_id and record.user_id == user_id and record.revoked_at is None:
                self.tx.put("refresh_tokens", record.id, dataclasses.replace(record, revoked_at=at))

    async def revoke_all(self, user_id: uuid.UUID, at: datetime, *, keep_family: uuid.UUID | None = None) -> int:
        revoked = 0
        for record in list(self.tx.rows("refresh_tokens").values()):
            if record.user_id == user_id and record.revoked_at is None and record.family_id != keep_family:
                self.tx.put("refresh_tokens", record.id, dataclasses.replace(record, revoked_at=at))
                revoked += 1
        return revoked


class FakeCredits(_Repository):
    async def ensure_account(self, user_id: uuid.UUID) -> None:
        if self.tx.get("accounts", user_id) is None:
            self.tx.put("accounts", user_id, CreditBalance(0, 0))

    async def balance(self, user_id: uuid.UUID) -> CreditBalance:
        found: CreditBalance | None = self.tx.get("accounts", user_id)
        return found or CreditBalance(0, 0)

    async def add_entry(self, entry: LedgerEntry) -> bool:
        if self.tx.get("ledger", entry.idempotency_key) is not None:
            return False
        self.tx.put("ledger", entry.idempotency_key, entry)
        return True

    async def change(self, user_id: uuid.UUID, *, balance_delta: int, reserved_delta: int) -> CreditBalance | None:
        # The conditions of the SQL UPDATE's WHERE clause (infrastructure/db/repositories/credits.py).
        before: CreditBalance | None = self.tx.get("accounts", user_id)
        if before is None:
            return None
        after = CreditBalance(before.balance + balance_delta, before.reserved + reserved_delta)
        if after.reserved < 0 or after.available < 0:
            return None
        if after.balance > MAX_BALANCE and before.balance < after.balance:
            return None
        self.tx.put("accounts", user_id, after)
        return after

    async def entry_by_key(self, key: str) -> LedgerEntry | None:
        found: LedgerEntry | None = self.tx.get("ledger", key)
        return found

    async def ledger_page(self, user_id: uuid.UUID, page: PageRequest) -> Page[LedgerEntry]:
        return newest_first((e for e in self.tx.rows("ledger").values() if e.user_id == user_id), page)

    async def ledger_totals(self, user_id: uuid.UUID) -> CreditBalance:
        entries = [e for e in self.tx.rows("ledger").values() if e.user_id == user_id]
        return CreditBalance(
            sum(e.amount for e in entries if e.kind in BALANCE_KINDS),
            sum(e.amount for e in entries if e.kind in RESERVED_KINDS),
        )

    async def open_reservation(self, generation_id: uuid.UUID) -> int:
        return sum(
            e.amount
            for e in self.tx.rows("ledger").values()
            if e.generation_id == generation_id and e.kind in RESERVED_KINDS
        )


class FakeCatalogue(_Repository):
    async def list_models(self, kind: ModelKind | None = None, *, include_inactive: bool = False) -> list[AiModel]:
        models = [
            m
            for m in self.tx.rows("models").values()
            if (kind is None or m.kind is kind) and (include_inactive or m.is_active)
        ]
        return sorted(models, key=lambda m: (m.kind.value, m.slug))

    async def get_model(self, model_id: uuid.UUID) -> AiModel | None:
        found: AiModel | None = self.tx.get("models", model_id)
        return found

    async def get_models(self, ids: Sequence[uuid.UUID]) -> list[AiModel]:
        return [m for i in dict.fromkeys(ids) if (m := self.tx.get("models", i)) is not None]

    async def get_model_by_slug(self, slug: str) -> AiModel | None:
        return next((m for m in self.tx.rows("models").values() if m.slug == slug), None)

    async def save_model(self, model: AiModel) -> AiModel:
        # An upsert on the slug: an existing row keeps its id.
        existing = await self.get_model_by_slug(model.slug)
        saved = dataclasses.replace(model, id=existing.id) if existing else model
        self.tx.put("models", saved.id, saved)
        return saved

    async def list_presets(self, model_id: uuid.UUID | None = None) -> list[Preset]:
        presets = [p for p in self.tx.rows("presets").values() if model_id is None or p.model_id == model_id]
        return sorted(presets, key=lambda p: (p.name, p.id))

    async def get_preset(self, preset_id: uuid.UUID) -> Preset | None:
        found: Preset | None = self.tx.get("presets", preset_id)
        return found

    async def get_presets(self, ids: Sequence[uuid.UUID]) -> list[Preset]:
        return [p for i in dict.fromkeys(ids) if (p := self.tx.get("presets", i)) is not None]

    async def save_preset(self, preset: Preset) -> Preset:
        self.tx.put("presets", preset.id, preset)
        return preset

    async def lock_catalogue(self) -> None:
        self._uow.db.catalogue_locks += 1


class FakeAdminSettings(_Repository):
    async def list(self) -> list[tuple[str, Any]]:
        return sorted(self.tx.rows("settings").items())

    async def get(self, key: str) -> Any | None:
        return self.tx.get("settings", key)

    async def set(self, key: str, value: Any, *, actor_id: uuid.UUID | None) -> None:
        self.tx.put("settings", key, value)


class FakeGenerations(_Repository):
    """Rows are copied in and out: `Generation` is mutable and a caller's copy must not be the row."""

    def _all(self) -> list[Generation]:
        return [dataclasses.replace(g) for g in self.tx.rows("generations").values()]

    def _put(self, generation: Generation) -> Generation:
        # Like the SQL rows, a stored generation keeps its inputs apart (see inputs_of).
        stored = dataclasses.replace(generation, input_chunk_ids=[])
        self.tx.put("generations", generation.id, stored)
        return dataclasses.replace(stored)

    async def add(self, generation: Generation) -> bool:
        g = generation
        if self.tx.get("generations", g.id) is not None:
            raise AssertionError(f"generation {g.id} inserted twice")
        if g.idempotency_key is not None and await self.get_by_idempotency_key(g.user_id, g.idempotency_key):
            return False
        self._put(g)
        return True

    async def get(self, generation_id: uuid.UUID) -> Generation | None:
        found: Generation | None = self.tx.get("generations", generation_id)
        return dataclasses.replace(found) if found else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Generation]:
        return [g for i in dict.fromkeys(ids) if (g := await self.get(i)) is not None]

    async def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Generation | None:
        return next((g for g in self._all() if g.user_id == user_id and g.idempotency_key == key), None)

    async def transition(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        **fields: Any,
    ) -> Generation | None:
        return await self.transition_if(generation_id, sources=sources, target=target, at=at, expect={}, **fields)

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
        g = await self.get(generation_id)
        if g is None or g.status not in sources or any(getattr(g, k) != v for k, v in expect.items()):
            return None
        if unheld and _held(g, self.tx.db.clock.now()):
            return None
        values: dict[str, Any] = {"status": target, "updated_at": at, **fields}
        if target.is_final:
            values["finished_at"] = at
        return self._put(dataclasses.replace(g, **values))

    async def set_progress(self, generation_id: uuid.UUID, progress: float, at: datetime) -> Generation | None:
        g = await self.get(generation_id)
        if g is None or g.status is not GenerationStatus.PROCESSING or g.progress >= progress:
            return None
        return self._put(dataclasses.replace(g, progress=progress, updated_at=at))

    async def page(self, *, viewer_id: uuid.UUID, flt: GenerationFilter, page: PageRequest) -> Page[Generation]:
        board_ids = {m.board_id for m in self.tx.rows("members").values() if m.user_id == viewer_id}

        def visible(g: Generation) -> bool:
            if flt.board_id is not None:
                return g.board_id == flt.board_id and flt.board_id in board_ids
            return g.user_id == viewer_id or (g.board_id is not None and g.board_id in board_ids)

        found = [
            g
            for g in self._all()
            if visible(g)
            and (not flt.statuses or g.status in flt.statuses)
            and (flt.model_id is None or g.model_id == flt.model_id)
        ]
        return newest_first(found, page)

    async def board_pages(
        self, *, viewer_id: uuid.UUID, pages: Sequence[tuple[uuid.UUID, PageRequest]]
    ) -> list[Page[Generation]]:
        return [
            await self.page(viewer_id=viewer_id, flt=GenerationFilter(board_id=board_id), page=page)
            for board_id, page in pages
        ]

    async def active(self, *, limit: int, polled_before: datetime | None = None) -> list[Generation]:
        found = [
            g
            for g in self._all()
            if g.status in ACTIVE_STATUSES and (polled_before is None or g.updated_at < polled_before)
        ]
        return sorted(found, key=lambda g: g.updated_at)[:limit]

    async def past_deadline(self, now: datetime, *, limit: int) -> list[Generation]:
        def deadline(g: Generation) -> datetime:
            if g.deadline_at is not None:
                return g.deadline_at
            model: AiModel | None = self.tx.get("models", g.model_id)
            return g.created_at + timedelta(seconds=deadline_seconds_of(model.capabilities if model else None))

        found = [g for g in self._all() if g.status in ACTIVE_STATUSES and deadline(g) < now]
        return sorted(found, key=deadline)[:limit]

    async def add_inputs(self, generation_id: uuid.UUID, chunk_ids: Sequence[uuid.UUID]) -> None:
        if chunk_ids:
            self.tx.put("inputs", generation_id, list(chunk_ids))

    async def inputs_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        return {g: list(found) for g in generation_ids if (found := self.tx.get("inputs", g))}

    def _assets(self) -> list[Asset]:
        changes = self.tx.rows("asset_changes")
        return [changes.get(a.id, a) for a in self.tx.listed("assets")]

    async def add_asset(self, asset: Asset) -> bool:
        if any(a.object_key == asset.object_key for a in self.tx.listed("assets")):
            return False
        self.tx.append("assets", asset)
        return True

    async def assets_of(self, generation_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Asset]]:
        out: dict[uuid.UUID, list[Asset]] = defaultdict(list)
        for asset in sorted(self._assets(), key=lambda a: (a.kind, a.position)):
            if asset.generation_id in generation_ids:
                out[asset.generation_id].append(asset)
        return dict(out)

    async def get_asset(self, asset_id: uuid.UUID) -> Asset | None:
        return next((a for a in self._assets() if a.id == asset_id), None)

    async def get_assets(self, ids: Sequence[uuid.UUID]) -> list[Asset]:
        wanted = set(ids)
        return [a for a in self._assets() if a.id in wanted]

    def _pending_unclaimed(self, asset: Asset, now: datetime) -> bool:
        until = self.tx.get("thumbnail_claims", asset.id)
        return asset.thumbnail_state == ThumbnailState.PENDING and (until is None or until <= now)

    async def claim_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> Asset | None:
        asset = await self.get_asset(asset_id)
        now = self.tx.db.clock.now()
        if asset is None or not self._pending_unclaimed(asset, now):
            return None
        claimed = dataclasses.replace(asset, thumbnail_attempts=asset.thumbnail_attempts + 1)
        self.tx.put("asset_changes", asset_id, claimed)
        self.tx.put("thumbnail_claims", asset_id, now + claim)
        self.tx.put("thumbnail_claim_tokens", asset_id, token)
        return claimed

    def _held(self, asset: Asset | None, token: uuid.UUID) -> bool:
        return (
            asset is not None
            and asset.thumbnail_state == ThumbnailState.PENDING
            and self.tx.get("thumbnail_claim_tokens", asset.id) == token
        )

    async def renew_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> bool:
        if not self._held(await self.get_asset(asset_id), token):
            return False
        self.tx.put("thumbnail_claims", asset_id, self.tx.db.clock.now() + claim)
        return True

    async def release_thumbnail(self, asset_id: uuid.UUID, *, token: uuid.UUID, after: timedelta) -> None:
        if self._held(await self.get_asset(asset_id), token):
            self.tx.put("thumbnail_claims", asset_id, self.tx.db.clock.now() + after)
            self.tx.delete("thumbnail_claim_tokens", asset_id)

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
        asset = await self.get_asset(asset_id)
        if asset is None or asset.thumbnail_state != ThumbnailState.PENDING:
            return False
        if token is not None and not self._held(asset, token):
            return False
        fields: dict[str, Any] = {"thumbnail_state": state, "thumbnail_error": error}
        if content_type is not None:
            fields["content_type"] = content_type
        if measured is not None:
            fields["width"] = asset.width if asset.width is not None else measured.width
            fields["height"] = asset.height if asset.height is not None else measured.height
            if asset.duration_seconds is None:
                fields["duration_seconds"] = measured.duration_seconds
        self.tx.put("asset_changes", asset_id, dataclasses.replace(asset, **fields))
        self.tx.delete("thumbnail_claims", asset_id)
        self.tx.delete("thumbnail_claim_tokens", asset_id)
        return True

    async def thumbnail_settled(self, generation_id: uuid.UUID, at: datetime) -> Generation | None:
        g = await self.get(generation_id)
        if g is None or g.thumbnails_pending <= 0:
            return None
        return self._put(dataclasses.replace(g, thumbnails_pending=g.thumbnails_pending - 1, updated_at=at))

    async def pending_thumbnails(self, *, created_before: datetime, limit: int) -> list[uuid.UUID]:
        now = self.tx.db.clock.now()
        waiting: dict[uuid.UUID, datetime] = {}
        for asset in self._assets():
            if asset.created_at < created_before and self._pending_unclaimed(asset, now):
                first = waiting.get(asset.generation_id)
                waiting[asset.generation_id] = asset.created_at if first is None else min(first, asset.created_at)
        return sorted(waiting, key=lambda g: (waiting[g], g))[:limit]

    async def record_provider_task(
        self, generation_id: uuid.UUID, provider: str, external_id: str, state: str, raw: dict[str, Any], at: datetime
    ) -> None:
        held = self.tx.get("provider_tasks", (provider, external_id))
        if held is not None and held[0] != generation_id:
            raise ProviderTaskTaken(provider, external_id)
        self.tx.put("provider_tasks", (provider, external_id), (generation_id, state))

    async def find_by_provider_task(self, provider: str, external_id: str) -> Generation | None:
        found = self.tx.get("provider_tasks", (provider, external_id))
        return await self.get(found[0]) if found else None

    async def record_attempts(self, attempts: Sequence[ProviderAttempt]) -> None:
        for attempt in attempts:
            self.tx.append("provider_attempts", attempt)

    async def record_skips(self, attempts: Sequence[ProviderAttempt]) -> datetime:
        rows = self.tx.listed("provider_attempts")
        mine = [(i, t) for i, t in enumerate(rows) if t.generation_id == attempts[0].generation_id][-len(attempts) :]

        def key(t: ProviderAttempt) -> tuple[object, ...]:
            return t.route_index, t.provider, t.outcome, t.error_code

        if [key(t) for _, t in mine] != [key(t) for t in attempts]:
            await self.record_attempts(attempts)
            return attempts[0].started_at
        end = max(t.finished_at for t in attempts)
        committed, appended = self.tx.db.provider_attempts, self.tx._appended["provider_attempts"]
        for i, t in mine:  # (extended in place: the caller commits at once)
            if i < len(committed):
                committed[i] = dataclasses.replace(t, finished_at=end)
            else:
                appended[i - len(committed)] = dataclasses.replace(t, finished_at=end)
        return mine[0][1].started_at

    async def attempts_of(
        self, generation_ids: Sequence[uuid.UUID], *, latest: int | None = None
    ) -> dict[uuid.UUID, list[ProviderAttempt]]:
        found: dict[uuid.UUID, list[ProviderAttempt]] = defaultdict(list)
        for attempt in self.tx.listed("provider_attempts"):
            if attempt.generation_id in generation_ids:
                found[attempt.generation_id].append(attempt)
        if latest is not None:
            return defaultdict(list, {g: found[g][-latest:] for g in found})
        return found

    async def running_by_provider(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for g in self._all():
            if g.status is GenerationStatus.PROCESSING and g.provider is not None:
                counts[g.provider] += 1
        return dict(counts)

    async def on_provider(self, provider: str, ids: Sequence[uuid.UUID]) -> list[Generation]:
        active = (GenerationStatus.PROCESSING, GenerationStatus.SUBMITTING)
        return [g for g in self._all() if g.id in ids or (g.provider == provider and g.status in active)]

    async def chunk_in_active_use(self, chunk_id: uuid.UUID) -> bool:
        return any(chunk_id in self.tx.rows("inputs").get(g.id, []) for g in self._all() if g.status in ACTIVE_STATUSES)

    async def due(self, now: datetime, *, queued_before: datetime, limit: int) -> list[Generation]:
        found = [
            g
            for g in self._all()
            if g.status in ACTIVE_STATUSES
            and (g.next_attempt_at is None or g.next_attempt_at <= now)
            and (
                g.status is not GenerationStatus.QUEUED or g.next_attempt_at is not None or g.updated_at < queued_before
            )
        ]
        return sorted(found, key=lambda g: (g.next_attempt_at or g.updated_at, g.id))[:limit]

    async def claim_submit(
        self, generation_id: uuid.UUID, *, token: uuid.UUID, at: datetime, lease: timedelta, max_attempts: int
    ) -> Generation | None:
        g = await self.get(generation_id)
        now = self.tx.db.clock.now()
        if (
            g is None
            or g.status not in (GenerationStatus.QUEUED, GenerationStatus.SUBMITTING)
            or (g.next_attempt_at is not None and g.next_attempt_at > now)
            or (g.deadline_at is not None and g.deadline_at <= now)
            or g.submit_attempts >= max_attempts
        ):
            return None
        return self._put(
            dataclasses.replace(
                g,
                status=GenerationStatus.SUBMITTING,
                updated_at=at,
                submit_attempts=g.submit_attempts + 1,
                lease_token=token,
                next_attempt_at=now + lease,
            )
        )

    async def defer(self, generation_ids: Sequence[uuid.UUID], after: timedelta) -> None:
        now = self.tx.db.clock.now()
        for g in await self.get_many(generation_ids):
            if g.status is GenerationStatus.PROCESSING and not _held(g, now):
                self._put(dataclasses.replace(g, next_attempt_at=now + after, lease_token=None))

    async def take_lease(
        self, generation_id: uuid.UUID, *, status: GenerationStatus, token: uuid.UUID, lease: timedelta
    ) -> Generation | None:
        g = await self.get(generation_id)
        now = self.tx.db.clock.now()
        if g is None or g.status is not status or _held(g, now):
            return None
        return self._put(dataclasses.replace(g, lease_token=token, next_attempt_at=now + lease))

    async def renew_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, lease: timedelta) -> bool:
        g = await self.get(generation_id)
        if g is None or g.lease_token != token or g.status not in ACTIVE_STATUSES:
            return False
        self._put(dataclasses.replace(g, next_attempt_at=self.tx.db.clock.now() + lease))
        return True

    async def release_lease(self, generation_id: uuid.UUID, *, token: uuid.UUID, after: timedelta | None) -> bool:
        g = await self.get(generation_id)
        if g is None or g.lease_token != token:
            return False
        until = None if after is None else self.tx.db.clock.now() + after
        self._put(dataclasses.replace(g, lease_token=None, next_attempt_at=until))
        return True


def _held(g: Generation, now: datetime) -> bool:
    """Another worker's lease runs past `now` (as the SQL repository's `_not_held`, negated)."""
    return g.lease_token is not None and g.next_attempt_at is not None and g.next_attempt_at > now


class FakeBoards(_Repository):
    async def add(self, board: Board) -> None:
        self.tx.put("boards", board.id, board)

    async def get(self, board_id: uuid.UUID) -> Board | None:
        found: Board | None = self.tx.get("boards", board_id)
        return found

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Board]:
        return [b for i in dict.fromkeys(ids) if (b := self.tx.get("boards", i)) is not None]

    async def role_of(self, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardRole | None:
        member: BoardMember | None = self.tx.get("members", (board_id, user_id))
        return member.role if member else None

    async def with_role(self, board_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Board, BoardRole] | None:
        board, role = await self.get(board_id), await self.role_of(board_id, user_id)
        return (board, role) if board is not None and role is not None else None

    async def board_ids_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return [m.board_id for m in self.tx.rows("members").values() if m.user_id == user_id]

    async def for_user(self, user_id: uuid.UUID) -> list[Board]:
        boards = await self.get_many(await self.board_ids_of(user_id))
        return sorted(boards, key=lambda b: (b.created_at, b.id))

    async def set_member(self, board_id: uuid.UUID, user_id: uuid.UUID, role: BoardRole, at: datetime) -> None:
        self.tx.put("members", (board_id, user_id), BoardMember(board_id, user_id, role))

    async def remove_member(self, board_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return self.tx.delete("members", (board_id, user_id))

    async def members_of(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BoardMember]]:
        out: dict[uuid.UUID, list[BoardMember]] = defaultdict(list)
        for member in self.tx.rows("members").values():
            if member.board_id in board_ids:
                out[member.board_id].append(member)
        return dict(out)

    async def lock_members(self, board_id: uuid.UUID) -> list[BoardMember]:
        return (await self.members_of([board_id])).get(board_id, [])


class FakeChunks(_Repository):
    async def add(self, chunk: Chunk) -> None:
        self.tx.put("chunks", chunk.id, chunk)

    async def get(self, chunk_id: uuid.UUID) -> Chunk | None:
        found: Chunk | None = self.tx.get("chunks", chunk_id)
        return found

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Chunk]:
        return [c for i in dict.fromkeys(ids) if (c := self.tx.get("chunks", i)) is not None]

    async def page(self, user_id: uuid.UUID, page: PageRequest) -> Page[Chunk]:
        return newest_first((c for c in self.tx.rows("chunks").values() if c.user_id == user_id), page)

    async def usage(self, user_id: uuid.UUID, *, lock: bool = False) -> tuple[int, int]:
        mine = [c for c in self.tx.rows("chunks").values() if c.user_id == user_id]
        return len(mine), sum(c.size for c in mine)

    async def mark_ready(self, chunk_id: uuid.UUID, *, object_key: str, size: int, sha256: str) -> Chunk | None:
        chunk = await self.get(chunk_id)
        if chunk is None or chunk.status is not ChunkStatus.PENDING:
            return None
        ready = dataclasses.replace(chunk, status=ChunkStatus.READY, object_key=object_key, size=size, sha256=sha256)
        self.tx.put("chunks", chunk_id, ready)
        return ready

    async def delete(self, chunk_id: uuid.UUID) -> bool:
        return self.tx.delete("chunks", chunk_id)

    async def stale_pending(self, before: datetime, *, limit: int) -> list[Chunk]:
        stale = [
            c for c in self.tx.rows("chunks").values() if c.status is ChunkStatus.PENDING and c.created_at < before
        ]
        return sorted(stale, key=lambda c: c.created_at)[:limit]


class FakeInvitations(_Repository):
    def _open(self, now: datetime) -> list[BoardInvitation]:
        return [i for i in self.tx.rows("invitations").values() if i.open_at(now)]

    async def put(self, invitation: BoardInvitation) -> None:
        self.tx.put("invitations", (invitation.board_id, invitation.email), invitation)

    async def get(self, board_id: uuid.UUID, email: str) -> BoardInvitation | None:
        found: BoardInvitation | None = self.tx.get("invitations", (board_id, email))
        return found

    async def count_open(self, board_id: uuid.UUID, now: datetime) -> int:
        return sum(1 for i in self._open(now) if i.board_id == board_id)

    async def delete_expired(self, board_id: uuid.UUID, now: datetime) -> None:
        for key, item in self.tx.rows("invitations").items():
            if item.board_id == board_id and not item.open_at(now):
                self.tx.delete("invitations", key)

    async def take(self, board_id: uuid.UUID, email: str, now: datetime) -> BoardInvitation | None:
        found = await self.get(board_id, email)
        if found is None or not found.open_at(now):
            return None
        self.tx.delete("invitations", (board_id, email))
        return found

    async def open_for_boards(
        self, board_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, list[BoardInvitation]]:
        out: dict[uuid.UUID, list[BoardInvitation]] = defaultdict(list)
        for item in sorted(self._open(now), key=lambda i: (i.created_at, i.email)):
            if item.board_id in board_ids:
                out[item.board_id].append(item)
        return dict(out)

    async def open_for_email(self, email: str, now: datetime) -> list[InvitationView]:
        found = sorted((i for i in self._open(now) if i.email == email), key=lambda i: (i.created_at, i.board_id))
        return [InvitationView(i, board.name) for i in found if (board := self.tx.get("boards", i.board_id))]


class FakeUnitOfWork:
    """`async with uow:` opens a transaction; leaving it discards whatever `commit()` did not apply."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self._tx: Transaction | None = None
        self.users = FakeUsers(self)
        self.refresh_tokens = FakeRefreshTokens(self)
        self.password_resets = FakePasswordResets(self)
        self.credits = FakeCredits(self)
        self.catalogue = FakeCatalogue(self)
        self.admin_settings = FakeAdminSettings(self)
        self.generations = FakeGenerations(self)
        self.boards = FakeBoards(self)
        self.chunks = FakeChunks(self)
        self.invitations = FakeInvitations(self)
        self.user_directory = FakeUserDirectory(self)
        self.audit = FakeAuditLog(self)
        self.webhooks = FakeWebhooks(self)

    @property
    def tx(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("The unit of work is not open: use `async with uow:`")
        return self._tx

    async def __aenter__(self) -> FakeUnitOfWork:
        if self._tx is not None:
            raise RuntimeError("The unit of work is already open")
        self._tx = Transaction(self.db)
        return self

    async def __aexit__(self, *args: object) -> None:
        self._tx = None  # what was not committed is gone

    async def commit(self) -> None:
        tx = self.tx
        if (failure := self.db.fail_next_commit) is not None:
            self.db.fail_next_commit = None
            tx.discard()
            raise failure
        tx.apply()
        self.db.commits += 1

    async def rollback(self) -> None:
        self.tx.discard()


# ---------------------------------------------------------------- the starter (one atomic write)


class FakeGenerationStarter:
    """The rule of infrastructure/db/generation_starts.py SqlGenerationStarter, on the fake database."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.calls: list[tuple[Generation, LedgerEntry | None]] = []

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        g = generation
        self.calls.append((dataclasses.replace(g), reservation))
        cost = 0
        if reservation is not None:
            if reservation.kind is not LedgerKind.RESERVE or reservation.amount <= 0:
                raise ValueError(
                    f"a start reserves a positive amount, not a {reservation.kind} of {reservation.amount}"
                )
            cost = reservation.amount
        async with FakeUnitOfWork(self.db) as uow:
            user = await uow.users.get(g.user_id)
            if user is None or user.deleted_at is not None:
                return StartOutcome(StartStatus.ACCOUNT_GONE)
            if g.idempotency_key is not None:
                existing = await uow.generations.get_by_idempotency_key(g.user_id, g.idempotency_key)
                if existing is not None:
                    return StartOutcome(StartStatus.REPLAYED, existing.id)
            model = await uow.catalogue.get_model(g.model_id)
            if model is None or not model.is_active or model.cost_credits != cost:
                return StartOutcome(StartStatus.MODEL_CHANGED)
            if cost:
                seen = await uow.credits.balance(g.user_id)
                if seen.available < cost:
                    return StartOutcome(StartStatus.INSUFFICIENT, account=seen)
            if g.input_chunk_ids:
                chunks = await uow.chunks.get_many(g.input_chunk_ids)
                ready = {c.id for c in chunks if c.user_id == g.user_id and c.status is ChunkStatus.READY}
                if ready != set(g.input_chunk_ids):
                    return StartOutcome(StartStatus.INPUTS_CHANGED)
            if g.board_id is not None:
                role = await uow.boards.role_of(g.board_id, g.user_id)
                if role is None or not role.can_generate:
                    return StartOutcome(StartStatus.BOARD_CHANGED)
            if not await uow.generations.add(g):
                existing = await uow.generations.get_by_idempotency_key(g.user_id, g.idempotency_key or "")
                return StartOutcome(StartStatus.REPLAYED, existing.id if existing else None)
            await uow.generations.add_inputs(g.id, g.input_chunk_ids)
            after = None
            if reservation is not None:
                await uow.credits.add_entry(reservation)
                after = await uow.credits.change(g.user_id, balance_delta=0, reserved_delta=cost)
                if after is None:
                    return StartOutcome(StartStatus.INSUFFICIENT, account=await uow.credits.balance(g.user_id))
            await uow.commit()
        return StartOutcome(StartStatus.STARTED, g.id, after)


# ---------------------------------------------------------------- structural checks (mypy reads these)


def _fresh_uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(FakeDatabase())


_uow: UnitOfWork = _fresh_uow()
_factory: UnitOfWorkFactory = _fresh_uow
_starter: GenerationStarter = FakeGenerationStarter(FakeDatabase())
