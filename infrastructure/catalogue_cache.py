"""Models and presets cached per process with a TTL; writes invalidate every replica through Redis.

A snapshot is read by a refresh task of its own, on a short unit outside any request's read
scope (an empty context), one at a time. Listings (`models`, `presets`, and `model`/`preset`
for reading generations) never wait for it once a first snapshot exists: they get the previous
one while it runs, and keep getting it while the database is unavailable. `generate`'s checks
(`current_model`, `current_preset`) wait for a snapshot read after every invalidation this
process has seen and within the TTL, and fail (ServiceUnavailable) rather than price a start
from an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
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
    loaded_at: float = 0.0  # when its read started
    generation: int = 0  # the invalidations seen when its read started


class CatalogueCache:
    """The whole catalogue is small: it is loaded in one go and served from memory."""

    def __init__(self, uow_factory: UnitOfWorkFactory, *, ttl_seconds: float, redis: Redis | None = None) -> None:
        self._uow_factory = uow_factory
        self._ttl = ttl_seconds
        self._redis = redis
        self._snapshot: _Snapshot | None = None  # the latest read, however old
        self._generation = 0  # invalidations seen
        self._refresh: asyncio.Task[_Snapshot] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="catalogue-invalidation")

    async def stop(self) -> None:
        for task in (self._listener, self._refresh):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listener = self._refresh = None

    def _fresh(self, snapshot: _Snapshot) -> bool:
        return snapshot.generation == self._generation and time.monotonic() - snapshot.loaded_at < self._ttl

    def _refreshing(self) -> asyncio.Task[_Snapshot]:
        """The running refresh, or a new one. Its own empty context: no request's read scope, so
        it reads on a unit of its own and no request's connection waits for it."""
        task = self._refresh
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._read(), name="catalogue-refresh", context=contextvars.Context()
            )
            task.add_done_callback(_report)
            self._refresh = task
        return task

    async def _read(self) -> _Snapshot:
        generation, started = self._generation, time.monotonic()
        async with self._uow_factory() as uow:
            models = await uow.catalogue.list_models(include_inactive=True)
            presets = await uow.catalogue.list_presets()
        # An invalidation that arrived while reading leaves it stale at birth (its generation is older).
        self._snapshot = _Snapshot({m.id: m for m in models}, {p.id: p for p in presets}, started, generation)
        return self._snapshot

    async def _listing(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and self._fresh(snapshot):
            return snapshot
        task = self._refreshing()
        if snapshot is not None:
            return snapshot  # the previous one while the refresh runs (or while the database is down)
        return await asyncio.shield(task)  # the first read ever: nothing to serve yet

    async def _current(self) -> _Snapshot:
        seen = self._generation
        snapshot = self._snapshot
        if snapshot is not None and self._fresh(snapshot):
            return snapshot
        while True:
            snapshot = await asyncio.shield(self._refreshing())
            if snapshot.generation >= seen:  # else it was started before an invalidation: read again
                return snapshot

    async def model(self, model_id: uuid.UUID) -> AiModel | None:
        """For reading: possibly from an older snapshot (generations carry their own model id)."""
        return (await self._listing()).models.get(model_id)

    async def preset(self, preset_id: uuid.UUID) -> Preset | None:
        return (await self._listing()).presets.get(preset_id)

    async def current_model(self, model_id: uuid.UUID) -> AiModel | None:
        """For starting a generation: never from a snapshot older than an invalidation seen or the TTL."""
        return (await self._current()).models.get(model_id)

    async def current_preset(self, preset_id: uuid.UUID) -> Preset | None:
        return (await self._current()).presets.get(preset_id)

    async def models(self) -> list[AiModel]:
        return sorted((await self._listing()).models.values(), key=lambda m: (m.kind.value, m.slug))

    async def presets(self) -> list[Preset]:
        return sorted((await self._listing()).presets.values(), key=lambda p: (p.name, str(p.id)))

    def drop_local(self) -> None:
        """An invalidation: the snapshot is read again at once (listings keep the previous one meanwhile)."""
        self._generation += 1
        self._refreshing()

    async def invalidate(self) -> None:
        """After a write: this process reads the catalogue again before returning (so the writer's
        next read sees its write), and the other replicas are told."""
        self.drop_local()
        if self._redis is not None:
            try:
                await self._redis.publish(INVALIDATION_CHANNEL, "1")
            except Exception:  # the TTL still bounds staleness on other replicas
                log.warning("catalogue invalidation could not be published", exc_info=True)
        with contextlib.suppress(ServiceUnavailable):  # logged by the task; the next read tries again
            await self._current()

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


def _report(task: asyncio.Task[_Snapshot]) -> None:
    """A failed refresh is logged here (a listing still serves the previous snapshot)."""
    if task.cancelled() or (exc := task.exception()) is None:
        return
    if isinstance(exc, ServiceUnavailable):
        log.warning("the catalogue could not be read (%s unavailable); listings serve the last read", exc.dependency)
    else:
        log.error("the catalogue could not be read", exc_info=exc)
