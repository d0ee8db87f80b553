"""Writes the API keys' lastUsedAt from the per-process buffer, in one batched UPDATE per interval.

The buffer is ApiKeyGate's (`take_used`); a flush that fails puts its moments back for the
next one. `stop` flushes what is left, so a process that shuts down cleanly loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.api_key_ports import ApiKeyUnitOfWorkFactory
from domain.use_cases.api_key_gate import ApiKeyGate

log = logging.getLogger("genhub.api_keys")


class LastUsedFlusher:
    def __init__(self, gate: ApiKeyGate, uow: ApiKeyUnitOfWorkFactory, *, interval_seconds: float) -> None:
        self._gate = gate
        self._uow = uow
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        #: Flushes that wrote something (for tests and metrics).
        self.flushes = 0

    async def flush(self) -> None:
        used = self._gate.take_used()
        if not used:
            return
        try:
            async with self._uow() as uow:
                await uow.api_keys.record_use(used)
                await uow.commit()
        except Exception:
            self._gate.put_back(used)
            log.warning("could not write the API keys' lastUsedAt; trying again later", exc_info=True)
            return
        self.flushes += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="api-key-last-used")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
