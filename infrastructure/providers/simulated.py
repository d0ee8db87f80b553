"""A built-in provider that needs no network: timed progress steps, then real media.

It keeps no in-process state (an API process submits, a separate worker polls):
everything is encoded in the external id::

    sim-<uuid hex>-<start ms>-<steps>-<step ms>-<mode>-<seed>-<output>
    output = <i|v><width>x<height>[d<seconds>]-<p|i|s (style)>-<ok|html|bomb|truncated|empty>

Ids without `-<output>` (submitted before outputs followed the params) still work: they
deliver the 256x256 PNG they always did (`infrastructure.providers.png`).

What it delivers (drawn by `infrastructure.providers.simulated_media`, off the event loop):

* image models: a PNG of the `width` x `height` params, each clamped to 64..2048
  (default 512 x 512), drawn in the `style` param (photo | illustration | sketch);
* video models (`ProviderJob.kind == "video"`): an H.264 MP4 at 12 fps lasting the
  `durationSeconds` param clamped to 1..30 (default 4), of `width` x `height` clamped to
  64..640 and rounded down to even (default 640 x 360);
* the picture follows the prompt and the optional int param `seed`: the same prompt and
  seed give the same bytes, another prompt or seed another picture.

Prompt markers (case-insensitive):

* `[fail]`: fails halfway; `[hang]`: stays running; `[reject]`: the submit is refused
  (CONTENT_POLICY); `[transient]` / `[transient:N]`: the first 1 / N submit attempts fail
  with a retryable error.
* Test only, outputs a misbehaving provider could send (for the media pipeline's tests):
  `[html]`: an HTML page at a `.png` URL; `[bomb]`: a PNG of a few KB declaring
  100000 x 100000 pixels (`.png`); `[truncated]`: the real output cut in half;
  `[empty]`: no bytes. The first of them in that order wins.
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

from domain.ports import ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from infrastructure.providers.png import render_png
from infrastructure.providers.simulated_media import Hostile, Style, hostile, render_image, render_video
from infrastructure.settings import Settings

SimulatedMode = Literal["normal", "fail", "hang"]
OutputKind = Literal["ok", "html", "bomb", "truncated", "empty"]

ATTEMPT_PARAM = "_attempt"
"""Job param holding the 0-based submit attempt; `[transient:N]` fails while it is < N."""

IMAGE_SIDES = (64, 2048)
VIDEO_SIDES = (64, 640)
VIDEO_SECONDS = (1, 30)
DEFAULT_IMAGE_SIZE = (512, 512)
DEFAULT_VIDEO_SIZE = (640, 360)
DEFAULT_VIDEO_SECONDS = 4
#: The hostile-output markers, in the order they win.
HOSTILE_MARKERS: tuple[Hostile, ...] = get_args(Hostile)

_MODES: tuple[str, ...] = get_args(SimulatedMode)
_STYLES: dict[str, Style] = {"p": "photo", "i": "illustration", "s": "sketch"}
_STYLE_CODES = {style: code for code, style in _STYLES.items()}
_ID_PATTERN = re.compile(
    r"^sim-([0-9a-f]{32})-(\d+)-(\d+)-(\d+)-(normal|fail|hang)-([0-9a-f]{12})"
    r"(?:-([iv])(\d{1,4})x(\d{1,4})(?:d(\d{1,3}))?-([pis])-(ok|html|bomb|truncated|empty))?$"
)
_URL_PREFIX = "sim://"
_TRANSIENT = re.compile(r"\[transient(?::(\d+))?\]", re.IGNORECASE)
_DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Output:
    """What a task delivers; `None` as a task's output: the legacy 256x256 PNG."""

    video: bool
    width: int
    height: int
    seconds: int
    style: Style
    kind: OutputKind

    def encode(self) -> str:
        duration = f"d{self.seconds}" if self.video else ""
        return (
            f"{'v' if self.video else 'i'}{self.width}x{self.height}{duration}-{_STYLE_CODES[self.style]}-{self.kind}"
        )

    @property
    def file_name(self) -> str:
        return "0.mp4" if self.video and self.kind in ("ok", "truncated", "empty") else "0.png"


@dataclass(frozen=True, slots=True)
class _Task:
    external_id: str
    start_ms: int
    steps: int
    step_ms: int
    mode: SimulatedMode
    seed: str
    output: Output | None

    @property
    def file_name(self) -> str:
        return self.output.file_name if self.output is not None else "0.png"


def _parse_id(external_id: str) -> _Task:
    match = _ID_PATTERN.match(external_id)
    if match is None:
        raise ProviderError("TASK_NOT_FOUND", f"not a simulated task id: {external_id!r}", retryable=False)
    _, start, steps, step_ms, mode, seed, kind, width, height, seconds, style, output_kind = match.groups()
    output = None
    if kind is not None:
        output = Output(
            video=kind == "v",
            width=int(width),
            height=int(height),
            seconds=int(seconds or 0),
            style=_STYLES[style],
            kind=cast(OutputKind, output_kind),
        )
    return _Task(external_id, int(start), int(steps), int(step_ms), cast(SimulatedMode, mode), seed, output)


def _marker(prompt: str, name: str) -> bool:
    return f"[{name}]" in prompt.lower()


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _clamped(value: int | None, default: int, bounds: tuple[int, int]) -> int:
    return default if value is None else min(max(value, bounds[0]), bounds[1])


def planned_output(job: ProviderJob) -> Output:
    """What `job` will deliver, from its kind, params and prompt markers."""
    prompt = job.prompt.lower()
    output_kind: OutputKind = next((m for m in HOSTILE_MARKERS if f"[{m}]" in prompt), "ok")
    style_param = job.params.get("style")
    style: Style = style_param if isinstance(style_param, str) and style_param in _STYLE_CODES else "photo"
    width, height = _int_param(job.params, "width"), _int_param(job.params, "height")
    if job.kind == "video":
        return Output(
            video=True,
            # H.264 in yuv420p needs even sides.
            width=_clamped(width, DEFAULT_VIDEO_SIZE[0], VIDEO_SIDES) // 2 * 2,
            height=_clamped(height, DEFAULT_VIDEO_SIZE[1], VIDEO_SIDES) // 2 * 2,
            seconds=_clamped(_int_param(job.params, "durationSeconds"), DEFAULT_VIDEO_SECONDS, VIDEO_SECONDS),
            style=style,
            kind=output_kind,
        )
    return Output(
        video=False,
        width=_clamped(width, DEFAULT_IMAGE_SIZE[0], IMAGE_SIDES),
        height=_clamped(height, DEFAULT_IMAGE_SIZE[1], IMAGE_SIDES),
        seconds=0,
        style=style,
        kind=output_kind,
    )


def picture_seed(prompt: str, params: Mapping[str, Any]) -> str:
    """12 hex digits from the prompt and the optional `seed` param (the prompt alone when there is none)."""
    seed = _int_param(params, "seed")
    material = prompt if seed is None else f"{prompt}\x00seed={seed}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def render(task: _Task) -> bytes:
    """Blocking: the bytes `task` delivers."""
    output = task.output
    if output is None:
        return render_png(task.seed)
    if output.kind in ("html", "bomb", "empty"):
        return hostile(cast(Hostile, output.kind), b"")
    if output.video:
        whole = render_video(task.seed, output.width, output.height, output.seconds, output.style)
    else:
        whole = render_image(task.seed, output.width, output.height, output.style)
    return whole if output.kind == "ok" else hostile("truncated", whole)


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
                # A refusal: the simulated provider knows it started nothing.
                raise ProviderError(
                    "SIMULATED_TRANSIENT", "simulated transient failure", retryable=True, nothing_started=True
                )
        mode: SimulatedMode = self._mode
        if _marker(prompt, "fail"):
            mode = "fail"
        elif _marker(prompt, "hang"):
            mode = "hang"
        seed = picture_seed(prompt, job.params)
        output = planned_output(job).encode()
        if self._submit_seconds:
            await asyncio.sleep(self._submit_seconds)
        return f"sim-{uuid.uuid4().hex}-{self._now_ms()}-{self._steps}-{self._step_ms}-{mode}-{seed}-{output}"

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
                state="succeeded",
                progress=1.0,
                output_urls=(f"{_URL_PREFIX}{external_id}/{task.file_name}",),
                raw=raw,
            )
        return ProviderStatus(state="running", progress=step / task.steps, raw=raw)

    async def cancel(self, external_id: str) -> None:
        _parse_id(external_id)

    async def download(self, url: str) -> AsyncIterator[bytes]:
        if not url.startswith(_URL_PREFIX):
            raise ProviderError("OUTPUT_NOT_FOUND", f"not a simulated output url: {url!r}", retryable=False)
        external_id, _, name = url[len(_URL_PREFIX) :].partition("/")
        status = await self.status(external_id)
        task = _parse_id(external_id)
        if status.state != "succeeded" or name != task.file_name:
            raise ProviderError("OUTPUT_NOT_FOUND", f"no such simulated output: {url!r}", retryable=False)
        # Drawing and encoding take from milliseconds to a second: keep them off the event
        # loop, which in embedded mode also serves requests and subscriptions.
        data = await asyncio.to_thread(render, task)
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


def from_settings(settings: Settings, *, http_client: httpx.AsyncClient) -> SimulatedProvider:
    """Factory used by `infrastructure.providers.registry` (needs no client)."""
    return SimulatedProvider(
        steps=settings.simulated_steps,
        step_seconds=settings.simulated_step_seconds,
        mode=settings.simulated_mode,
        submit_seconds=settings.simulated_submit_seconds,
        download_seconds=settings.simulated_download_seconds,
    )
