"""Benchmark the media workshop: spool+probe and thumbnail time, and peak memory, per image and per video.

Cases (each in a fresh Python process, so its memory figures are its own):
- images: square pictures drawn by the simulated provider (its "photo" style), as PNG
  and as JPEG (quality 90), of 512, 1024 and 2048 px;
- videos: ffmpeg's testsrc2 pattern at 1280x720, 24 fps, H.264 (yuv420p, +faststart),
  of 2, 5 and 10 s.

Per case, `--repeat` times: `spool()` of the file from memory in 64 KiB chunks (write,
hash, sniff, probe) and `thumbnail(max_side=512, quality=80)` (WebP), timed separately
(p50 and p95 in milliseconds). Memory: the growth of the process's peak RSS (VmHWM,
reset through /proc/self/clear_refs before the timed runs) over its RSS before them, and
the largest RSS of any ffmpeg child (getrusage(RUSAGE_CHILDREN).ru_maxrss).

    .venv/bin/python bench/media.py [--repeat 10] [--only image|video]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

IMAGE_SIDES = (512, 1024, 2048)
VIDEO_SECONDS = (2, 5, 10)
VIDEO_SIZE = "1280x720"


def kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def make_sample(kind: str, size: int, where: Path) -> bytes:
    if kind in ("png", "jpeg"):
        from PIL import Image

        from infrastructure.providers.simulated_media import render_image

        png = render_image("bench0media01", size, size, "photo")
        if kind == "png":
            return png
        out = io.BytesIO()
        Image.open(io.BytesIO(png)).convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()
    from infrastructure.media.ffmpeg import ffmpeg_exe

    target = where / f"clip-{size}.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
        + ["-i", f"testsrc2=size={VIDEO_SIZE}:rate=24", "-t", str(size), "-c:v", "libx264"]
        + ["-preset", "veryfast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(target)],
        check=True,
        timeout=300,
    )
    return target.read_bytes()


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 64 * 1024):
        yield data[offset : offset + 64 * 1024]


async def run_case(kind: str, size: int, sample: Path, repeat: int) -> dict[str, object]:
    """In its own process (the sample was made by the parent: its encoder is no child of ours)."""
    from domain.media import THUMBNAIL_MAX_SIDE, THUMBNAIL_QUALITY, MediaLimits
    from infrastructure.media import LocalMediaWorkshop

    data = sample.read_bytes()
    with tempfile.TemporaryDirectory(prefix="genhub-bench-media-") as where:
        workshop = LocalMediaWorkshop(temp_dir=Path(where) / "spool", concurrency=1)
        limits = MediaLimits()
        # One untimed run: imports, the ffmpeg binary in the page cache, Pillow's plugins.
        async with workshop.spool(chunked(data), limits=limits) as media:
            await media.thumbnail(max_side=THUMBNAIL_MAX_SIDE, quality=THUMBNAIL_QUALITY)
        rss_before = kib("VmRSS")
        peak_reset = reset_peak()
        probe_ms: list[float] = []
        thumb_ms: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            async with workshop.spool(chunked(data), limits=limits) as media:
                probed = time.perf_counter()
                thumb = await media.thumbnail(max_side=THUMBNAIL_MAX_SIDE, quality=THUMBNAIL_QUALITY)
                done = time.perf_counter()
                info = media.info
            probe_ms.append((probed - started) * 1000)
            thumb_ms.append((done - probed) * 1000)
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "case": f"{kind} {size}x{size}" if kind != "video" else f"video {VIDEO_SIZE} {size} s",
        "bytes": len(data),
        "geometry": f"{info.width}x{info.height}" + (f" {info.duration_seconds:.1f}s" if info.duration_seconds else ""),
        "thumbnail": f"{thumb.width}x{thumb.height} {len(thumb.data)} B",
        "probe": percentiles(probe_ms),
        "thumb": percentiles(thumb_ms),
        "rss_peak_delta_mib": (kib("VmHWM") - rss_before) / 1024 if peak_reset else None,
        "ffmpeg_max_rss_mib": children / 1024 if kind == "video" else None,
        "seconds": size if kind == "video" else None,
    }


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def table(rows: list[dict[str, object]]) -> str:
    head = (
        "| case | file | spool+probe p50 / p95 ms | thumbnail p50 / p95 ms | per video s (probe + thumb, p50) "
        "| peak RSS growth MiB | ffmpeg max RSS MiB |"
    )
    lines = [head, "|" + "---|" * 7]
    for row in rows:
        probe = row["probe"]
        thumb = row["thumb"]
        assert isinstance(probe, list | tuple) and isinstance(thumb, list | tuple)
        seconds = row["seconds"]
        per_second = f"{(probe[0] + thumb[0]) / seconds:.1f} ms" if isinstance(seconds, int) else ""
        rss = row["rss_peak_delta_mib"]
        ffmpeg = row["ffmpeg_max_rss_mib"]
        lines.append(
            f"| {row['case']} | {float(str(row['bytes'])) / 1024:.0f} KiB ({row['geometry']}) "
            f"| {probe[0]:.1f} / {probe[1]:.1f} | {thumb[0]:.1f} / {thumb[1]:.1f} | {per_second} "
            f"| {'' if rss is None else f'{rss:.1f}'} | {'' if ffmpeg is None else f'{ffmpeg:.0f}'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per case (default 10)")
    parser.add_argument("--only", choices=("image", "video"), help="run only the image or only the video cases")
    parser.add_argument("--case", nargs=3, metavar=("KIND", "SIZE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        result = asyncio.run(run_case(args.case[0], int(args.case[1]), Path(args.case[2]), args.repeat))
        print(json.dumps(result))
        return 0
    cases: list[tuple[str, int]] = []
    if args.only in (None, "image"):
        cases += [(kind, side) for kind in ("png", "jpeg") for side in IMAGE_SIDES]
    if args.only in (None, "video"):
        cases += [("video", seconds) for seconds in VIDEO_SECONDS]
    rows = []
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    with tempfile.TemporaryDirectory(prefix="genhub-bench-samples-") as where:
        for kind, size in cases:
            sample = Path(where) / f"{kind}-{size}"
            sample.write_bytes(make_sample(kind, size, Path(where)))
            out = subprocess.run(
                [sys.executable, __file__, "--case", kind, str(size), str(sample), "--repeat", str(args.repeat)],
                check=True,
                capture_output=True,
                text=True,
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"done: {rows[-1]['case']}", file=sys.stderr)
    print(f"media workshop, {args.repeat} runs per case, {os.cpu_count()} CPUs, concurrency 1")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
