"""Runs the ffmpeg binary that `imageio-ffmpeg` ships, bounded: time, memory, output, environment.

ffmpeg decodes hostile files, so it never runs in our process: a crash or a hang costs one
subprocess. Each run gets no stdin, an address-space limit, no core
dumps, an empty environment, a timeout after which it is killed, and a cap on what it may
write to stdout. The limits are set by `/bin/sh` (`ulimit`) right before it `exec`s ffmpeg,
not by a `preexec_fn`: Python code between fork and exec is unsafe while other threads
(Pillow's, asyncio's) hold locks. Its log is read line by line at `-loglevel level+...` (each line tagged
`[error]`, `[info]`...), keeping a bounded head and counting error lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
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


#: Sets the limits, then becomes ffmpeg ("$0" is its path). 125: a limit could not be set.
_LIMITED_EXEC = 'ulimit -v {kib} && ulimit -c 0 || exit 125; exec "$0" "$@"'
#: Exit statuses of the wrapper itself: limits refused (125), ffmpeg not executable (126, 127).
_SPAWN_FAILED = {125: "its limits could not be set", 126: "it is not executable", 127: "it was not found"}


class FfmpegFailed(Exception):
    """ffmpeg wrote more than its stdout cap: the input is not what we read."""


class FfmpegInterrupted(Exception):
    """ffmpeg could not finish, whatever the input: it timed out, was killed by a signal, or did not start.

    Says nothing about the file (a loaded host, the memory limit): worth retrying later.
    """


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


def limited_command(args: Sequence[str], memory_bytes: int) -> list[str]:
    """`ffmpeg -nostdin -hide_banner <args>` run under an address-space limit and without core dumps."""
    script = _LIMITED_EXEC.format(kib=max(1, memory_bytes // 1024))
    return ["/bin/sh", "-c", script, ffmpeg_exe(), "-nostdin", "-hide_banner", *args]


async def run_ffmpeg(
    args: Sequence[str],
    *,
    time_limit: float,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    max_stdout: int = 64 * 1024 * 1024,
) -> FfmpegResult:
    """Run `ffmpeg -nostdin -hide_banner <args>` within its limits.

    Raises FfmpegInterrupted on timeout (spawning included), signal or a failed start, and
    FfmpegFailed when stdout overflows. A non-zero exit status is returned, not raised: the
    log says what the input was like. On cancellation the process is killed and reaped
    before the cancellation propagates.
    """
    log = FfmpegLog()
    proc: asyncio.subprocess.Process | None = None
    try:
        async with asyncio.timeout(time_limit):
            # Inside the timeout: a spawn that hangs (a host out of processes) counts too;
            # asyncio kills and reaps a child whose start is interrupted.
            proc = await asyncio.create_subprocess_exec(
                *limited_command(args, memory_bytes),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=FFMPEG_ENV,
            )
            out, _ = await asyncio.gather(_read_stdout(proc, max_stdout), _read_log(proc, log))
            returncode = await proc.wait()
    except TimeoutError:
        raise FfmpegInterrupted(f"ffmpeg did not finish within {time_limit:g} s") from None
    except OSError as exc:  # fork or exec refused (EAGAIN, ENOMEM...)
        raise FfmpegInterrupted(f"ffmpeg could not start: {exc}") from None
    finally:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Reap it even when this task is being cancelled: no zombie, no running decoder.
            await asyncio.shield(proc.wait())
    if returncode < 0:
        raise FfmpegInterrupted(f"ffmpeg was killed by signal {-returncode}")
    if returncode in _SPAWN_FAILED and not log.error_count:
        raise FfmpegInterrupted(f"ffmpeg could not start: {_SPAWN_FAILED[returncode]}")
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
