"""A built-in provider that needs no network: timed progress steps, then a real PNG.

It keeps no in-process state (an API process submits, a separate worker polls):
everything is encoded in the external id::

    sim-<uuid hex>-<start ms>-<steps>-<step ms>-<mode>-<seed>

`status()` derives progress from the wall clock. Prompt markers (case-insensitive)
drive tests: `[fail]`, `[hang]`, `[reject]`, `[transient]` / `[transient:N]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import httpx

from domain.ports import ProviderCallback, ProviderError, ProviderJob, ProviderStatus, RateLimiter
from infrastructure.providers.png import render_png
from infrastructure.settings import Settings

SimulatedMode = Literal["normal", "fail", "hang"]

ATTEMPT_PARAM = "_attempt"
"""Job param holding the 0-based submit attempt; `[transient:N]` fails while it is < N."""

_MODES: tuple[str, ...] = get_args(SimulatedMode)
_ID_PATTERN = re.compile(r"^sim-([0-9a-f]{32})-(\d+)-(\d+)-(\d+)-(normal|fail|hang)-([0-9a-f]{12})$")
_URL_PREFIX = "sim://"
_TRANSIENT = re.compile(r"\[transient(?::(\d+))?\]", re.IGNORECASE)
_DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Task:
    external_id: str
    start_ms: int
    steps: int
    step_ms: int
    mode: SimulatedMode
    seed: str


def _parse_id(external_id: str) -> _Task:
    match = _ID_PATTERN.match(external_id)
    if match is None:
        raise ProviderError("TASK_NOT_FOUND", f"not a simulated task id: {external_id!r}", retryable=False)
    _, start, steps, step_ms, mode, seed = match.groups()
    return _Task(external_id, int(start), int(steps), int(step_ms), cast(SimulatedMode, mode), seed)


def _marker(prompt: str, name: str) -> bool:
    return f"[{name}]" in prompt.lower()


class SimulatedProvider:
    """Implements `domain.ports.Provider` without any external service."""

    name = "simulated"
    supports_cancel = True

    def __init__(
        self,
        steps: int = 4,
        step_seconds: float = 0.5,
        mode: SimulatedMode = "normal",
        *,
        submit_seconds: float = 0.0,
        download_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"unknown simulated mode {mode!r}; expected one of {_MODES}")
        self._steps = max(1, steps)
        self._step_ms = max(0, round(step_seconds * 1000))
        self._mode: SimulatedMode = mode
        # Latency of a real provider's accept and delivery (demos, recovery benchmarks).
        self._submit_seconds = max(0.0, submit_seconds)
        self._download_seconds = max(0.0, download_seconds)
        # Wall clock on purpose: the submitting and the polling process must agree.
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def submit(self, job: ProviderJob) -> str:
        prompt = job.prompt
        if _marker(prompt, "reject"):
            raise ProviderError("CONTENT_POLICY", "the simulated provider rejected the prompt", retryable=False)
        transient = _TRANSIENT.search(prompt)
        if transient is not None:
            failures = int(transient.group(1) or 1)
            if _attempt_of(job.params) < failures:
                raise ProviderError("SIMULATED_TRANSIENT", "simulated transient failure", retryable=True)
        mode: SimulatedMode = self._mode
        if _marker(prompt, "fail"):
            mode = "fail"
        elif _marker(prompt, "hang"):
            mode = "hang"
        seed = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
        if self._submit_seconds:
            await asyncio.sleep(self._submit_seconds)
        return f"sim-{uuid.uuid4().hex}-{self._now_ms()}-{self._steps}-{self._step_ms}-{mode}-{seed}"

    async def status(self, external_id: str) -> ProviderStatus:
        task = _parse_id(external_id)
        elapsed = max(0, self._now_ms() - task.start_ms)
        step = elapsed // task.step_ms if task.step_ms else task.steps
        raw: dict[str, Any] = {"step": min(step, task.steps), "steps": task.steps, "mode": task.mode}
        if task.mode == "fail" and step >= max(1, (task.steps + 1) // 2):
            return ProviderStatus(
                state="failed",
                progress=None,
                error_code="SIMULATED_FAILURE",
                error_message="The simulated provider failed this generation on purpose.",
                raw=raw,
            )
        if step == 0:
            return ProviderStatus(state="pending", progress=0.0, raw=raw)
        if task.mode == "hang":
            # Stays "running" forever, one step short of done, for expiry tests.
            return ProviderStatus(state="running", progress=min(step, task.steps - 1) / task.steps, raw=raw)
        if step >= task.steps:
            return ProviderStatus(
                state="succeeded", progress=1.0, output_urls=(f"{_URL_PREFIX}{external_id}/0.png",), raw=raw
            )
        return ProviderStatus(state="running", progress=step / task.steps, raw=raw)

    async def cancel(self, external_id: str) -> None:
        _parse_id(external_id)

    async def download(self, url: str) -> AsyncIterator[bytes]:
        if not url.startswith(_URL_PREFIX):
            raise ProviderError("OUTPUT_NOT_FOUND", f"not a simulated output url: {url!r}", retryable=False)
        external_id, _, name = url[len(_URL_PREFIX) :].partition("/")
        status = await self.status(external_id)
        if status.state != "succeeded" or name != "0.png":
            raise ProviderError("OUTPUT_NOT_FOUND", f"no such simulated output: {url!r}", retryable=False)
        # Rendering takes tens of milliseconds of pure Python: keep it off the event loop,
        # which in embedded mode also serves requests and subscriptions.
        data = await asyncio.to_thread(render_png, _parse_id(external_id).seed)
        if self._download_seconds:
            await asyncio.sleep(self._download_seconds)
        for offset in range(0, len(data), _DOWNLOAD_CHUNK):
            yield data[offset : offset + _DOWNLOAD_CHUNK]

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        raise PermissionError("the simulated provider sends no callbacks")


def _attempt_of(params: Mapping[str, Any]) -> int:
    value = params.get(ATTEMPT_PARAM, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def from_settings(settings: Settings, *, http_client: httpx.AsyncClient, limiter: RateLimiter) -> SimulatedProvider:
    """Factory used by `infrastructure.providers.registry` (needs neither the client nor the limiter)."""
    return SimulatedProvider(
        steps=settings.simulated_steps,
        step_seconds=settings.simulated_step_seconds,
        mode=settings.simulated_mode,
        submit_seconds=settings.simulated_submit_seconds,
        download_seconds=settings.simulated_download_seconds,
    )
