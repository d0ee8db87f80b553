"""In-memory fakes of the ports the use cases take, one of each kind, and `Fakes`: all of them wired together.

The database, its unit of work and the generation starter live in tests/unit/fake_database.py
(re-exported here, so tests import every fake from this module).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.boards import Board, BoardMember, BoardRole
from domain.catalogue import AiModel, ModelKind, Preset
from domain.chunks import Chunk, ChunkStatus
from domain.credits import (
    CreditBalance,
    LedgerEntry,
    LedgerKind,
    generation_key,
)
from domain.errors import InvalidState, NotFound, ObjectTooLarge, StorageUnavailable
from domain.events import Event
from domain.generations import ACTIVE_STATUSES, Generation, GenerationStatus
from domain.ports import (
    CatalogueReader,
    EventPublisher,
    IssuedAccess,
    JobQueue,
    ObjectInfo,
    ObjectStorage,
    PasswordHasher,
    PresignedRequest,
    RateBucket,
    RateLimiter,
    StoredObject,
    TokenIssuer,
)
from domain.use_cases.watching import ChangeFeed
from domain.users import Principal, Role, User, refresh_token_hash
from tests.unit.fake_database import FakeDatabase, FakeGenerationStarter, FakeUnitOfWork, Transaction

__all__ = [
    "T0",
    "FakeCatalogueReader",
    "FakeChangeFeed",
    "FakeClock",
    "FakeDatabase",
    "FakeEventPublisher",
    "FakeGenerationStarter",
    "FakeJobQueue",
    "FakePasswordHasher",
    "FakeRateLimiter",
    "FakeStorage",
    "FakeTokenIssuer",
    "FakeUnitOfWork",
    "Fakes",
    "Transaction",
    "principal_of",
]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def principal_of(user: User) -> Principal:
    """The caller as its verified access token names it."""
    return Principal(user.id, user.role)


class FakeClock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


# ---------------------------------------------------------------- the other ports


class FakeCatalogueReader:
    """Reads the committed catalogue (a cache that is always fresh); counts invalidations."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.invalidations = 0

    async def model(self, model_id: uuid.UUID) -> AiModel | None:
        return self.db.models.get(model_id)

    async def preset(self, preset_id: uuid.UUID) -> Preset | None:
        return self.db.presets.get(preset_id)

    async def current_model(self, model_id: uuid.UUID) -> AiModel | None:
        return self.db.models.get(model_id)

    async def current_preset(self, preset_id: uuid.UUID) -> Preset | None:
        return self.db.presets.get(preset_id)

    async def models(self) -> list[AiModel]:
        return sorted(self.db.models.values(), key=lambda m: (m.kind.value, m.slug))

    async def presets(self) -> list[Preset]:
        return sorted(self.db.presets.values(), key=lambda p: (p.name, str(p.id)))

    async def invalidate(self) -> None:
        self.invalidations += 1


class FakeEventPublisher:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    async def publish_many(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


class FakeJobQueue:
    """Records what was queued; `failure` (when set) is raised by every enqueue instead."""

    def __init__(self) -> None:
        self.kicked: list[tuple[str, dict[str, Any]]] = []
        self.failure: Exception | None = None

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        if self.failure is not None:
            raise self.failure
        self.kicked.append((task_name, kwargs))


class FakeRateLimiter:
    """Sliding windows on the fake clock; `hit_all` counts in every bucket or in none."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.hits: dict[str, list[datetime]] = defaultdict(list)

    def _wait(self, bucket: RateBucket) -> int:
        now = self.clock.now()
        window = timedelta(seconds=bucket.window_seconds)
        recent = [at for at in self.hits[bucket.name] if at > now - window]
        self.hits[bucket.name] = recent
        if len(recent) < bucket.limit:
            return 0
        return max(1, int((recent[-bucket.limit] + window - now).total_seconds()))

    async def hit(self, bucket: str, *, limit: int, window_seconds: int) -> int:
        return await self.hit_all([RateBucket(bucket, limit, window_seconds)])

    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        wait = max((self._wait(b) for b in buckets), default=0)
        if wait == 0:
            for bucket in buckets:
                self.hits[bucket.name].append(self.clock.now())
        return wait


class FakeStorage:
    """Objects in a dict; seals like the local backend (the key itself is frozen, a sealed key takes no PUT).

    `failing` names the methods that raise StorageUnavailable (the backend is down for them).
    """

    backend_name = "fake"

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.sealed: set[str] = set()
        self.presigned_puts: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.failing: set[str] = set()

    def _check(self, method: str) -> None:
        if method in self.failing:
            raise StorageUnavailable()

    def client_put(self, key: str, data: bytes, *, content_type: str) -> None:
        """What a client's PUT to a presigned URL does (refused once the key is sealed)."""
        if key in self.sealed:
            raise InvalidState("sealed")
        self.objects[key] = data
        self.content_types[key] = content_type

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        self._check("put_stream")
        body = b""
        async for part in data:
            body += part
            if len(body) > max_size:
                raise ObjectTooLarge(max_size)
        self.objects[key] = body
        self.content_types[key] = content_type
        return StoredObject(key, len(body), hashlib.sha256(body).hexdigest(), content_type)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        async def one_part() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, one_part(), content_type=content_type, max_size=len(data))

    async def head(self, key: str) -> ObjectInfo | None:
        self._check("head")
        if key not in self.objects:
            return None
        return ObjectInfo(key, len(self.objects[key]), self.content_types.get(key))

    async def sha256_of(self, key: str) -> str:
        self._check("sha256_of")
        return hashlib.sha256(self.objects[key]).hexdigest()

    async def open_read(self, key: str) -> AsyncIterator[bytes]:
        self._check("open_read")
        if key not in self.objects:
            raise NotFound("object", f"object {key!r} does not exist")
        body = self.objects[key]
        for start in range(0, len(body), 4):
            yield body[start : start + 4]

    async def delete(self, key: str) -> None:
        self._check("delete")
        self.deleted.append(key)
        self.objects.pop(key, None)
        self.content_types.pop(key, None)
        self.sealed.discard(key)

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest:
        self._check("presign_get")
        url = f"https://files.test/{key}" + (f"?filename={filename}" if filename else "")
        return PresignedRequest(url, "GET", {}, self.clock.now() + timedelta(seconds=expires_in))

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256: str | None, expires_in: int
    ) -> PresignedRequest:
        self._check("presign_put")
        self.presigned_puts[key] = {"content_type": content_type, "size": size, "sha256": sha256}
        headers = {"content-type": content_type}
        return PresignedRequest(
            f"https://files.test/{key}", "PUT", headers, self.clock.now() + timedelta(seconds=expires_in)
        )

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        self._check("seal_upload")
        if key in self.sealed:
            raise InvalidState("This upload is being completed right now; ask again in a moment.")
        if key not in self.objects:
            return None
        self.sealed.add(key)
        return key

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        self._check("unseal_upload")
        if discard:
            self.objects.pop(key, None)
            self.content_types.pop(key, None)
        self.sealed.discard(key)

    async def check(self) -> None:
        self._check("check")


class FakePasswordHasher:
    """Not a hash: readable in assertions, and the same password always gives the same string."""

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash is not None and password_hash == f"hashed:{password}"


class FakeTokenIssuer:
    refresh_ttl = 3600
    access_ttl = 900

    def issue_access(
        self, user_id: uuid.UUID, role: Any, *, session_id: uuid.UUID | None = None, session_version: int = 0
    ) -> IssuedAccess:
        return IssuedAccess(f"access:{user_id}:{role}:{session_id}:{session_version}", self.access_ttl)

    @staticmethod
    def new_refresh_token() -> tuple[str, str]:
        token = f"refresh-{uuid.uuid4().hex}"
        return token, refresh_token_hash(token)


class FakeRevocations:
    """AccessRevocations that records each announcement (and hands it to a gate when given one)."""

    def __init__(self) -> None:
        self.announced: list[uuid.UUID] = []
        self.keys_announced: list[uuid.UUID] = []
        self.gate: Any = None

    async def announce(self, user_id: uuid.UUID, *, api_key: uuid.UUID | None = None) -> None:
        self.announced.append(user_id)
        if api_key is not None:
            self.keys_announced.append(api_key)
        if self.gate is not None:
            await self.gate.revoked(user_id)


class FakeChangeFeed:
    """Delivers the events a test `push`ed for a user, in order; the feed closes when they run out.

    `on_subscribe` runs once a subscription is open (to commit a change "in between").
    """

    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, list[Event]] = defaultdict(list)
        self.subscribed: list[uuid.UUID] = []
        self.on_subscribe: Callable[[], None] | None = None

    def push(self, user_id: uuid.UUID, *events: Event) -> None:
        self.pending[user_id].extend(events)

    @contextlib.asynccontextmanager
    async def _subscription(self, user_id: uuid.UUID) -> AsyncIterator[AsyncIterator[Event]]:
        queue = self.pending[user_id]

        async def events() -> AsyncIterator[Event]:
            while queue:
                yield queue.pop(0)

        self.subscribed.append(user_id)
        if self.on_subscribe is not None:
            self.on_subscribe()
        yield events()

    def events_of(self, user_id: uuid.UUID) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._subscription(user_id)


# ---------------------------------------------------------------- one builder for a whole world of fakes


@dataclasses.dataclass
class Fakes:
    """Every fake wired to one database and one clock, plus `given` helpers that write committed rows."""

    db: FakeDatabase = dataclasses.field(default_factory=FakeDatabase)
    clock: FakeClock = dataclasses.field(default_factory=FakeClock)
    publisher: FakeEventPublisher = dataclasses.field(default_factory=FakeEventPublisher)
    jobs: FakeJobQueue = dataclasses.field(default_factory=FakeJobQueue)

    def __post_init__(self) -> None:
        self.db.clock = self.clock  # one clock for workers and database, unless a test skews them
        self.uow = FakeUnitOfWork(self.db)
        self.starter = FakeGenerationStarter(self.db)
        self.catalogue = FakeCatalogueReader(self.db)
        self.limiter = FakeRateLimiter(self.clock)
        self.storage = FakeStorage(self.clock)
        self.hasher = FakePasswordHasher()
        self.tokens = FakeTokenIssuer()
        self.feed = FakeChangeFeed()
        self.revocations = FakeRevocations()

    def uow_factory(self) -> Callable[[], FakeUnitOfWork]:
        return lambda: FakeUnitOfWork(self.db)

    # -- given

    def user(self, *, role: Role = Role.USER, email: str | None = None, balance: int | None = None) -> User:
        user_id = uuid.uuid4()
        user = User(user_id, email or f"{user_id.hex[:8]}@example.com", role, self.clock.now(), "hashed:x")
        self.db.users[user.id] = user
        if balance is not None:
            self.db.accounts[user.id] = CreditBalance(0, 0)
            if balance:
                self.credit(user.id, balance)
        return user

    def credit(self, user_id: uuid.UUID, amount: int) -> None:
        """A committed grant of `amount`: a ledger row and the account moved by it."""
        key = f"given:{uuid.uuid4()}"
        entry = LedgerEntry(uuid.uuid4(), user_id, LedgerKind.GRANT, amount, key, self.clock.now())
        self.db.ledger[key] = entry
        before = self.db.accounts.get(user_id, CreditBalance(0, 0))
        self.db.accounts[user_id] = CreditBalance(before.balance + amount, before.reserved)

    def model(
        self,
        *,
        cost: int = 10,
        active: bool = True,
        slug: str | None = None,
        kind: ModelKind = ModelKind.IMAGE,
        provider: str = "fake",
        **capabilities: Any,
    ) -> AiModel:
        model_id = uuid.uuid4()
        model = AiModel(
            model_id,
            slug or f"model-{model_id.hex[:8]}",
            "A model",
            provider,
            kind,
            cost,
            capabilities,
            is_active=active,
        )
        self.db.models[model.id] = model
        return model

    def preset(self, model: AiModel, **params: Any) -> Preset:
        preset = Preset(uuid.uuid4(), model.id, f"preset-{len(self.db.presets)}", params)
        self.db.presets[preset.id] = preset
        return preset

    def board(self, owner: User, **members: tuple[User, BoardRole]) -> Board:
        board = Board(uuid.uuid4(), "Shared", owner.id, self.clock.now())
        self.db.boards[board.id] = board
        self.db.members[(board.id, owner.id)] = BoardMember(board.id, owner.id, BoardRole.OWNER)
        for user, role in members.values():
            self.join(board, user, role)
        return board

    def join(self, board: Board, user: User, role: BoardRole) -> None:
        self.db.members[(board.id, user.id)] = BoardMember(board.id, user.id, role)

    def chunk(
        self,
        owner: User,
        *,
        status: ChunkStatus = ChunkStatus.READY,
        data: bytes = b"chunk bytes",
        content_type: str = "image/png",
        created_at: datetime | None = None,
    ) -> Chunk:
        chunk_id = uuid.uuid4()
        key = f"user_chunks/{owner.id}/{chunk_id}.png"
        chunk = Chunk(
            chunk_id,
            owner.id,
            key,
            "in.png",
            content_type,
            len(data),
            status,
            created_at or self.clock.now(),
            hashlib.sha256(data).hexdigest() if status is ChunkStatus.READY else None,
        )
        self.db.chunks[chunk.id] = chunk
        if status is ChunkStatus.READY:
            self.storage.objects[key] = data
            self.storage.content_types[key] = content_type
        return chunk

    def generation(self, owner: User, model: AiModel, status: GenerationStatus, **fields: Any) -> Generation:
        """A stored generation; an active one holds its model's cost as an open reservation."""
        now = self.clock.now()
        g = Generation(
            id=uuid.uuid4(),
            user_id=owner.id,
            model_id=model.id,
            prompt="a fox",
            status=status,
            created_at=now,
            updated_at=now,
            reserved_credits=model.cost_credits,
            **{"deadline_at": now + timedelta(minutes=15), **fields},
        )
        self.db.generations[g.id] = g
        if g.input_chunk_ids:
            self.db.inputs[g.id] = list(g.input_chunk_ids)
        if status in ACTIVE_STATUSES and model.cost_credits:
            key = generation_key(g.id, LedgerKind.RESERVE)
            self.db.ledger[key] = LedgerEntry(
                uuid.uuid4(), owner.id, LedgerKind.RESERVE, model.cost_credits, key, now, g.id
            )
            before = self.db.accounts.get(owner.id, CreditBalance(0, 0))
            self.db.accounts[owner.id] = CreditBalance(before.balance, before.reserved + model.cost_credits)
        return g


# ---------------------------------------------------------------- structural checks (mypy reads these)

_clock = FakeClock()
_reader: CatalogueReader = FakeCatalogueReader(FakeDatabase())
_publisher: EventPublisher = FakeEventPublisher()
_jobs: JobQueue = FakeJobQueue()
_limiter: RateLimiter = FakeRateLimiter(_clock)
_storage: ObjectStorage = FakeStorage(_clock)
_hasher: PasswordHasher = FakePasswordHasher()
_tokens: TokenIssuer = FakeTokenIssuer()
_feed: ChangeFeed = FakeChangeFeed()
