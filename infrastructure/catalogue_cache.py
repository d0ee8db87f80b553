"""Models and presets cached per process with a TTL; writes invalidate every replica through Redis.

While the database is unavailable, the last catalogue read answers (however old).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis

from domain.catalogue import AiModel, Preset
from domain.errors import ServiceUnavailable
from domain.repositories import UnitOfWorkFactory

log = logging.getLogger(__name__)
INVALIDATION_CHANNEL = "genhub:catalogue:invalidate"


@dataclass(slots=True)
class _Snapshot:
    models: dict[uuid.UUID, AiModel] = field(default_factory=dict)
    presets: dict[uuid.UUID, Preset] = field(default_factory=dict)
    loaded_at: float = 0.0


class CatalogueCache:
    """The whole catalogue is small: it is loaded in one go and served from memory."""

    def __init__(self, uow_factory: UnitOfWorkFactory, *, ttl_seconds: float, redis: Redis | None = None) -> None:
        self._uow_factory = uow_factory
        self._ttl = ttl_seconds
        self._redis = redis
        self._snapshot: _Snapshot | None = None
        self._last: _Snapshot | None = None  # the latest read, even if invalidated since (outage fallback)
        self._lock = asyncio.Lock()
        self._generation = 0
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="catalogue-invalidation")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _load(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < self._ttl:
            return snapshot
        async with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and time.monotonic() - snapshot.loaded_at < self._ttl:
                return snapshot
            generation = self._generation
            try:
                async with self._uow_factory() as uow:
                    models = await uow.catalogue.list_models(include_inactive=True)
                    presets = await uow.catalogue.list_presets()
            except ServiceUnavailable:
                if self._last is None:
                    raise
                # The database is down: the last catalogue read is better than no answer, and a
                # request that writes (generate) meets the outage at its own statement anyway.
                log.warning("catalogue served from the last read while the database is unavailable")
                return self._last
            fresh = _Snapshot({m.id: m for m in models}, {p.id: p for p in presets}, time.monotonic())
            # An invalidation that arrived while loading makes this snapshot stale at birth.
            if generation == self._generation:
                self._snapshot = fresh
            self._last = fresh
            return fresh

    async def model(self, model_id: uuid.UUID) -> AiModel | None:
        return (await self._load()).models.get(model_id)

    async def preset(self, preset_id: uuid.UUID) -> Preset | None:
        return (await self._load()).presets.get(preset_id)

    async def models(self) -> list[AiModel]:
        return sorted((await self._load()).models.values(), key=lambda m: (m.kind.value, m.slug))

    async def presets(self) -> list[Preset]:
        return sorted((await self._load()).presets.values(), key=lambda p: (p.name, str(p.id)))

    def drop_local(self) -> None:
        self._generation += 1
        self._snapshot = None

    async def invalidate(self) -> None:
        self.drop_local()
        if self._redis is not None:
            try:
                await self._redis.publish(INVALIDATION_CHANNEL, "1")
            except Exception:  # the TTL still bounds staleness on other replicas
                log.warning("catalogue invalidation could not be published", exc_info=True)

    async def _listen(self) -> None:
        assert self._redis is not None
        backoff = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(INVALIDATION_CHANNEL)
                    # Anything may have changed while we were not listening.
                    self.drop_local()
                    backoff = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.drop_local()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("catalogue invalidation listener lost Redis; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
