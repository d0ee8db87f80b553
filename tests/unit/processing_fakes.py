"""Small hand-written fakes of the ports the processing use cases need (no database, no broker)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import credits as rules
from domain.catalogue import AiModel, ModelKind
from domain.credits import MAX_BALANCE, RESERVED_KINDS, CreditBalance, LedgerEntry, LedgerKind
from domain.events import Event
from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.ports import (
    PresignedRequest,
    ProviderCallback,
    ProviderError,
    ProviderJob,
    ProviderStatus,
    StoredObject,
)
from domain.repositories import Asset
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COST = 10


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Store:
    """The state a unit of work would persist, shared by every fake UoW."""

    def __init__(self) -> None:
        self.generations: dict[uuid.UUID, Generation] = {}
        self.assets: list[Asset] = []
        self.provider_tasks: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}
        self.accounts: dict[uuid.UUID, CreditBalance] = {}
        self.ledger: dict[str, LedgerEntry] = {}
        self.models: dict[uuid.UUID, AiModel] = {}


class Generations:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, generation_id: uuid.UUID) -> Generation | None:
        g = self.s.generations.get(generation_id)
        return dataclasses.replace(g) if g else None

    async def transition(self, generation_id: uuid.UUID, **kw: Any) -> Generation | None:
        return await self.transition_if(generation_id, expect={}, **kw)

    async def transition_if(
        self,
        generation_id: uuid.UUID,
        *,
        sources: frozenset[GenerationStatus],
        target: GenerationStatus,
        at: datetime,
        expect: dict[str, Any],
        **fields: Any,
    ) -> Generation | None:
        g = self.s.generations.get(generation_id)
        if g is None or g.status not in sources or any(getattr(g, k) != v for k, v in expect.items()):
            return None
        extra = {"finished_at": at} if target.is_final else {}
        updated = dataclasses.replace(g, status=target, updated_at=at, **fields, **extra)
        self.s.generations[generation_id] = updated
        return dataclasses.replace(updated)

    async def set_progress(self, generation_id: uuid.UUID, progress: float, at: datetime) -> Generation | None:
        g = self.s.generations.get(generation_id)
        if g is None or g.status is not GenerationStatus.PROCESSING or g.progress >= progress:
            return None
        self.s.generations[generation_id] = dataclasses.replace(g, progress=progress, updated_at=at)
        return self.s.generations[generation_id]

    async def due(self, now: datetime, *, queued_before: datetime, limit: int) -> list[Generation]:
        found = [
            g
            for g in self.s.generations.values()
            if g.status in ACTIVE_STATUSES
            and (g.next_attempt_at is None or g.next_attempt_at <= now)
            and (g.status is not GenerationStatus.QUEUED or g.next_attempt_at or g.updated_at < queued_before)
        ]
        return found[:limit]

    async def defer(self, generation_ids: Sequence[uuid.UUID], until: datetime) -> None:
        for gid in generation_ids:
            g = self.s.generations[gid]
            if g.status is GenerationStatus.PROCESSING:
                self.s.generations[gid] = dataclasses.replace(g, next_attempt_at=until)

    async def past_deadline(self, now: datetime, *, limit: int) -> list[Generation]:
        return [
            g
            for g in self.s.generations.values()
            if g.status in ACTIVE_STATUSES and g.deadline_at is not None and g.deadline_at < now
        ][:limit]

    async def inputs_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        return {}

    async def add_asset(self, asset: Asset) -> bool:
        if any(a.object_key == asset.object_key for a in self.s.assets):
            return False
        self.s.assets.append(asset)
        return True

    async def record_provider_task(
        self, generation_id: uuid.UUID, provider: str, external_id: str, state: str, raw: dict[str, Any], at: datetime
    ) -> None:
        self.s.provider_tasks[(provider, external_id)] = (generation_id, state)

    async def find_by_provider_task(self, provider: str, external_id: str) -> Generation | None:
        found = self.s.provider_tasks.get((provider, external_id))
        return await self.get(found[0]) if found else None


class Credits:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add_entry(self, entry: LedgerEntry) -> bool:
        if entry.idempotency_key in self.s.ledger:
            return False
        self.s.ledger[entry.idempotency_key] = entry
        return True

    async def change(self, user_id: uuid.UUID, *, balance_delta: int, reserved_delta: int) -> CreditBalance | None:
        before = self.s.accounts[user_id]
        after = CreditBalance(before.balance + balance_delta, before.reserved + reserved_delta)
        if after.reserved < 0 or after.available < 0 or after.balance > max(MAX_BALANCE, before.balance):
            return None
        self.s.accounts[user_id] = after
        return after

    async def balance(self, user_id: uuid.UUID) -> CreditBalance:
        return self.s.accounts[user_id]

    async def open_reservation(self, generation_id: uuid.UUID) -> int:
        return sum(
            e.amount for e in self.s.ledger.values() if e.generation_id == generation_id and e.kind in RESERVED_KINDS
        )


class Catalogue:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get_model(self, model_id: uuid.UUID) -> AiModel | None:
        return self.s.models.get(model_id)

    async def model(self, model_id: uuid.UUID) -> AiModel | None:
        return self.s.models.get(model_id)


class Chunks:
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Any]:
        return []


class Uow:
    def __init__(self, store: Store) -> None:
        self.generations = Generations(store)
        self.credits = Credits(store)
        self.catalogue = Catalogue(store)
        self.chunks = Chunks()

    async def __aenter__(self) -> Uow:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None

    async def commit(self) -> None:
        return None  # the fake writes through; rollback semantics are the SQL tests' job


class Provider:
    """Scripted: `submit_errors` are raised first, then task ids are handed out; `statuses` per task."""

    name = "fake"
    supports_cancel = True

    def __init__(self) -> None:
        self.submit_errors: list[ProviderError] = []
        self.jobs: list[ProviderJob] = []
        self.status_of: ProviderStatus = ProviderStatus(state="running", progress=0.5)
        self.status_error: ProviderError | None = None
        self.download_error: ProviderError | None = None
        self.canceled: list[str] = []
        self.status_calls = 0

    async def submit(self, job: ProviderJob) -> str:
        self.jobs.append(job)
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        return f"task-{len(self.jobs)}"

    async def status(self, external_id: str) -> ProviderStatus:
        self.status_calls += 1
        if self.status_error is not None:
            raise self.status_error
        return self.status_of

    async def cancel(self, external_id: str) -> None:
        self.canceled.append(external_id)

    async def download(self, url: str) -> AsyncIterator[bytes]:
        if self.download_error is not None:
            raise self.download_error
        yield b"\x89PNG fake " + url.encode()

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        if headers.get("x-sig") != "ok":
            raise PermissionError("bad signature")
        if not body:
            raise ValueError("empty body")
        return ProviderCallback(body.decode(), ProviderStatus(state="succeeded"))


class Registry:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def get(self, name: str) -> Provider:
        if name != self.provider.name:
            raise KeyError(name)
        return self.provider


class Storage:
    backend_name = "fake"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        body = b"".join([chunk async for chunk in data])
        self.objects[key] = body
        return StoredObject(key, len(body), "0" * 64, content_type)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest:
        return PresignedRequest(f"https://files/{key}", "GET", {}, T0)


class Publisher:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    async def publish_many(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


class Jobs:
    def __init__(self) -> None:
        self.kicked: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        self.kicked.append((task_name, kwargs))


class Limiter:
    """Allows each bucket once per window (windows never expire here)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        if bucket in self.seen:
            return window_seconds
        self.seen.add(bucket)
        return 0


@dataclasses.dataclass
class Env:
    """Everything a processing test needs, plus helpers to set up a generation with a hold."""

    store: Store = dataclasses.field(default_factory=Store)
    clock: Clock = dataclasses.field(default_factory=Clock)
    provider: Provider = dataclasses.field(default_factory=Provider)
    storage: Storage = dataclasses.field(default_factory=Storage)
    publisher: Publisher = dataclasses.field(default_factory=Publisher)
    jobs: Jobs = dataclasses.field(default_factory=Jobs)
    limiter: Limiter = dataclasses.field(default_factory=Limiter)
    policy: ProcessingPolicy = dataclasses.field(
        default_factory=lambda: ProcessingPolicy(
            max_attempts=3, retry_base_seconds=2.0, retry_max_seconds=30.0, lease_seconds=60.0, jitter=lambda: 0.5
        )
    )

    @property
    def ports(self) -> ProcessingPorts:
        catalogue = Catalogue(self.store)
        return ProcessingPorts(
            uow=lambda: Uow(self.store),  # type: ignore[arg-type,return-value]
            providers=Registry(self.provider),
            catalogue=catalogue,  # type: ignore[arg-type]
            storage=self.storage,  # type: ignore[arg-type]
            publisher=self.publisher,
            jobs=self.jobs,
            limiter=self.limiter,
            clock=self.clock,
        )

    def generation(self, status: GenerationStatus = GenerationStatus.QUEUED, **fields: Any) -> Generation:
        model = AiModel(uuid.uuid4(), "fake-model", "Fake", "fake", ModelKind.IMAGE, COST, {"providerModel": "m1"})
        self.store.models[model.id] = model
        user_id = uuid.uuid4()
        self.store.accounts[user_id] = CreditBalance(100, COST)
        g = Generation(
            id=uuid.uuid4(),
            user_id=user_id,
            model_id=model.id,
            prompt="a fox",
            status=status,
            created_at=T0,
            updated_at=T0,
            reserved_credits=COST,
            **{"deadline_at": T0 + timedelta(minutes=15), **fields},
        )
        self.store.generations[g.id] = g
        key = rules.generation_key(g.id, LedgerKind.RESERVE)
        self.store.ledger[key] = LedgerEntry(uuid.uuid4(), user_id, LedgerKind.RESERVE, COST, key, T0, g.id)
        return g

    def get(self, generation: Generation) -> Generation:
        return self.store.generations[generation.id]

    def kinds(self, generation: Generation) -> list[LedgerKind]:
        return sorted(e.kind for e in self.store.ledger.values() if e.generation_id == generation.id)

    def account(self, generation: Generation) -> CreditBalance:
        return self.store.accounts[generation.user_id]
