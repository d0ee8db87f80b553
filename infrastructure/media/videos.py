"""Videos checked with the ffmpeg binary: geometry, duration, truncation; and poster frames.

ffmpeg reads exactly one local file: the input is named `file:<path>`, the only protocol
allowed is `file` (a crafted playlist cannot fetch URLs or open other files), and the
demuxer is forced from the sniffed type (`mov` or `matroska`), so HLS, concat and the other
demuxers that follow references never run. MP4/QuickTime external data references stay
off (ffmpeg's default).

Probing is one pass that copies the video stream to the null muxer (reads every packet,
decodes none): ffmpeg's log gives the header (duration, the first video stream's size and
rotation) and reports a cut file as errors; for MP4/QuickTime the top-level box sizes must
also add up to the file size (`iso_boxes`). A video lasts the longer of what its header
says and where its last packet ends (a header can understate it). ffmpeg reporting errors
makes the file OUTPUT_TRUNCATED; ffmpeg not finishing (timeout, signal, the memory limit,
no start) says nothing of the file and raises `MediaUnavailable`, to be retried.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from domain.media import MediaInfo, MediaLimits, MediaRejected, MediaUnavailable, Thumbnail
from infrastructure.media.ffmpeg import THREADS, FfmpegFailed, FfmpegInterrupted, FfmpegLog, run_ffmpeg
from infrastructure.media.images import check_geometry
from infrastructure.media.iso_boxes import box_problem
from infrastructure.media.thumbnails import webp_thumbnail

#: The demuxer each sniffed video type is read with (never ffmpeg's guess).
DEMUXERS: dict[str, str] = {"video/mp4": "mov", "video/quicktime": "mov", "video/webm": "matroska"}
#: The poster frame is taken at min(this, duration / 2).
POSTER_SECONDS = 1.0

# The header's own lines, matched from the start: ffmpeg prints a metadata value's further
# lines untagged and indented ("      :   Duration: ..."), so a crafted title cannot pass as one.
_DURATION = re.compile(r"^\[info\]   Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"^\[info\]   Stream #0:\d+\S*: Video: (.*)$")
# "yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], ..." (not "0x31637661)")
_GEOMETRY = re.compile(r"(?:^|[ ,])(\d{1,6})x(\d{1,6})(?=[ ,\[]|$)")
_ROTATION = re.compile(r"^\[info\] {5,}(?:Display Matrix|displaymatrix): rotation of (-?\d+(?:\.\d+)?) degrees")
_SECTION_END = re.compile(r"^\[info\] (?:Output #0|Stream mapping:)")
_OUT_TIME = re.compile(rb"^out_time_us=(\d+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class VideoHeader:
    width: int | None
    height: int | None
    duration: float | None


def input_args(path: Path, content_type: str) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", DEMUXERS[content_type], "-i", f"file:{path}"]


def parse_header(log: FfmpegLog) -> VideoHeader:
    """The input's duration and its first video stream's displayed size, from ffmpeg's log."""
    duration: float | None = None
    width = height = None
    rotation = 0.0
    in_input = in_first_video = False
    for line in log.lines:
        if line.startswith("[info] Input #0,"):
            in_input = True
            continue
        if not in_input:
            continue
        if _SECTION_END.match(line):
            break
        if duration is None and (match := _DURATION.match(line)):
            hours, minutes, seconds = match.groups()
            duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        elif line.startswith("[info]   Stream #"):
            # Side data that follows belongs to this stream: only the first video stream's counts.
            in_first_video = False
            stream = _VIDEO_STREAM.match(line) if width is None else None
            if stream is not None and (geometry := _GEOMETRY.search(stream.group(1))):
                width, height = int(geometry.group(1)), int(geometry.group(2))
                in_first_video = True
        elif in_first_video and (turn := _ROTATION.match(line)):
            rotation = float(turn.group(1))
    if width is not None and height is not None and round(abs(rotation)) % 180 == 90:
        width, height = height, width
    return VideoHeader(width, height, duration)


async def probe_video(path: Path, content_type: str, limits: MediaLimits, *, memory_bytes: int) -> MediaInfo:
    """Width, height and duration of a whole video of the sniffed type; raises MediaRejected."""
    if content_type in ("video/mp4", "video/quicktime"):
        problem = await asyncio.to_thread(box_problem, path)
        if problem is not None:
            raise MediaRejected("OUTPUT_TRUNCATED", problem)
    args = [
        "-loglevel",
        "level+info",
        "-threads",
        THREADS,
        *input_args(path, content_type),
        "-map",
        "0:v:0?",
        "-c",
        "copy",
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-nostats",
        "-",
    ]
    try:
        result = await run_ffmpeg(
            args, time_limit=limits.probe_timeout_seconds, memory_bytes=memory_bytes, max_stdout=1024 * 1024
        )
    except FfmpegInterrupted as exc:
        raise MediaUnavailable(f"probing a video: {exc}") from None
    except FfmpegFailed as exc:
        raise MediaRejected("OUTPUT_TRUNCATED", str(exc)) from None
    header = parse_header(result.log)
    if header.width is None or header.height is None:
        if result.returncode != 0 or result.log.error_count:
            raise MediaRejected("OUTPUT_TRUNCATED", _first_error(result.log))
        raise MediaRejected("OUTPUT_UNSUPPORTED_TYPE", "has no video stream")
    check_geometry(header.width, header.height, limits)
    # The header is the file's own claim; the packets are what a player plays: the longer counts.
    times = _OUT_TIME.findall(result.stdout)
    packets = int(times[-1]) / 1_000_000 if times else None
    durations = [d for d in (header.duration, packets) if d is not None]
    duration = max(durations) if durations else None
    if duration is not None and duration > limits.max_video_seconds:
        raise MediaRejected("OUTPUT_TOO_LONG", f"lasts {duration:.1f} s, over {limits.max_video_seconds:g} s")
    if result.returncode != 0 or result.log.error_count:
        raise MediaRejected("OUTPUT_TRUNCATED", _first_error(result.log))
    if duration is None or duration <= 0:
        raise MediaRejected("OUTPUT_TRUNCATED", "has no duration")
    return MediaInfo(content_type=content_type, width=header.width, height=header.height, duration_seconds=duration)


def _first_error(log: FfmpegLog) -> str:
    if log.errors:
        return f"ffmpeg: {log.errors[0]}" + (f" (and {log.error_count - 1} more errors)" if log.error_count > 1 else "")
    return "ffmpeg could not read it"


async def poster_png(path: Path, info: MediaInfo, *, time_limit: float, memory_bytes: int, max_side: int) -> bytes:
    """One frame as PNG bytes, at min(POSTER_SECONDS, duration / 2), upright (ffmpeg autorotates)."""
    at = min(POSTER_SECONDS, (info.duration_seconds or 0.0) / 2)
    # A frame at most twice the thumbnail's size is enough for a sharp downscale in Pillow,
    # and keeps the PNG ffmpeg encodes and pipes small however large the video.
    bound = 2 * max_side
    scale = f"scale=w='min(iw,{bound})':h='min(ih,{bound})':force_original_aspect_ratio=decrease"
    stdout_cap = 4 * info.width * info.height + 1024 * 1024
    for seek in (at, 0.0) if at > 0 else (0.0,):
        args = [
            "-loglevel",
            "error",
            "-threads",
            THREADS,
            "-ss",
            f"{seek:.3f}",
            *input_args(path, info.content_type),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            scale,
            "-c:v",
            "png",
            "-compression_level",
            "1",
            "-f",
            "image2pipe",
            "pipe:1",
        ]
        try:
            result = await run_ffmpeg(args, time_limit=time_limit, memory_bytes=memory_bytes, max_stdout=stdout_cap)
        except FfmpegInterrupted as exc:
            raise MediaUnavailable(f"taking a poster frame: {exc}") from None
        except FfmpegFailed as exc:
            raise MediaRejected("OUTPUT_TRUNCATED", f"no poster frame: {exc}") from None
        if result.stdout:
            return result.stdout
    raise MediaRejected("OUTPUT_TRUNCATED", f"no poster frame: {_first_error(result.log)}")


def poster_thumbnail(png: bytes, *, max_side: int, quality: int) -> Thumbnail:
    """Blocking: the thumbnail of a poster frame ffmpeg wrote as PNG."""
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            image.load()
            return webp_thumbnail(image, max_side=max_side, quality=quality)
    except Exception as exc:
        raise MediaRejected("OUTPUT_TRUNCATED", f"the poster frame does not decode: {exc}") from None
