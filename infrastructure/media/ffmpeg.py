"""Runs the ffmpeg binary that `imageio-ffmpeg` ships, bounded: time, memory, output, environment.

ffmpeg decodes hostile files, so it never runs in our process: a crash or a hang costs one
subprocess. Each run gets no stdin, an address-space limit, no core
dumps, an empty environment, a timeout after which it is killed, and a cap on what it may
write to stdout. Its log is read line by line at `-loglevel level+...` (each line tagged
`[error]`, `[info]`...), keeping a bounded head and counting error lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import imageio_ffmpeg

#: Address space of one ffmpeg process unless the caller says otherwise. ffmpeg starts a thread
#: per stage (demux, decode, filter, encode, mux), each with its own stack and malloc arena.
DEFAULT_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
#: Decoder threads: bounded, so the address space needed does not grow with the host's cores.
THREADS = "2"
#: Log lines kept verbatim (the input's header comes first); later lines are only counted.
MAX_LOG_LINES = 400
MAX_ERROR_LINES = 20
#: Nothing of ours (database URLs, keys) is inherited; one malloc arena per thread would
#: reserve address space the memory limit is meant to bound.
FFMPEG_ENV = {"MALLOC_ARENA_MAX": "2"}
_ERROR_LEVEL = re.compile(r"\[(?:error|fatal|panic)\] ")


class FfmpegFailed(Exception):
    """ffmpeg did not finish normally: it timed out, was killed by a signal, or wrote too much."""


@dataclass(slots=True)
class FfmpegLog:
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_LOG_LINES:
            self.lines.append(line)
        if _ERROR_LEVEL.search(line):
            self.error_count += 1
            if len(self.errors) < MAX_ERROR_LINES:
                self.errors.append(line)


@dataclass(frozen=True, slots=True)
class FfmpegResult:
    returncode: int
    stdout: bytes
    log: FfmpegLog


@cache
def ffmpeg_exe() -> str:
    """The path of the bundled binary (resolved once per process)."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def child_limits(memory_bytes: int) -> None:
    # Runs in the child between fork and exec: only async-signal-safe work (two setrlimit calls).
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def run_ffmpeg(
    args: Sequence[str],
    *,
    time_limit: float,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    max_stdout: int = 64 * 1024 * 1024,
) -> FfmpegResult:
    """Run `ffmpeg -nostdin -hide_banner <args>`; raises FfmpegFailed on timeout, signal or overflow.

    A non-zero exit status is returned, not raised: the log says what the input was like.
    On cancellation the process is killed and reaped before the cancellation propagates.
    """
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=FFMPEG_ENV,
        preexec_fn=lambda: child_limits(memory_bytes),
    )
    log = FfmpegLog()
    try:
        async with asyncio.timeout(time_limit):
            out, _ = await asyncio.gather(_read_stdout(proc, max_stdout), _read_log(proc, log))
            returncode = await proc.wait()
    except TimeoutError:
        raise FfmpegFailed(f"ffmpeg did not finish within {time_limit:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Reap it even when this task is being cancelled: no zombie, no running decoder.
            await asyncio.shield(proc.wait())
    if returncode < 0:
        raise FfmpegFailed(f"ffmpeg was killed by signal {-returncode}")
    return FfmpegResult(returncode, out, log)


async def _read_stdout(proc: asyncio.subprocess.Process, limit: int) -> bytes:
    assert proc.stdout is not None
    parts: list[bytes] = []
    total = 0
    while chunk := await proc.stdout.read(256 * 1024):
        total += len(chunk)
        if total > limit:
            raise FfmpegFailed(f"ffmpeg wrote more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def _read_log(proc: asyncio.subprocess.Process, log: FfmpegLog) -> None:
    assert proc.stderr is not None
    while True:
        try:
            line = await proc.stderr.readline()
        except ValueError:  # longer than the stream's limit (asyncio dropped it): count it
            log.add("[error] (an overlong log line)")
            continue
        if not line:
            return
        log.add(line.decode("utf-8", "replace").rstrip())
