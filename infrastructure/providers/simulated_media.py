"""What the simulated provider delivers: pictures drawn with Pillow, clips encoded by ffmpeg.

Everything is a pure function of its arguments (the seed is 12 hex digits derived from the
prompt and the `seed` param), so any process renders the same bytes for the same task, and
results are cached per process in small LRU caches. Blocking: call them in a thread.

Besides real media, `hostile()` makes the outputs a misbehaving provider could send, for
end-to-end tests of the media pipeline: an HTML page, a pixel bomb, a cut file, nothing.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import struct
import subprocess
import tempfile
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter

from infrastructure.media.ffmpeg import FFMPEG_ENV, ffmpeg_exe

Style = Literal["photo", "illustration", "sketch"]
Hostile = Literal["html", "bomb", "truncated", "empty"]

#: Frames per second of the simulated clips.
VIDEO_FPS = 12
#: Seconds ffmpeg may take to encode one clip before the download fails.
ENCODE_TIMEOUT_SECONDS = 120.0
#: What the pixel bomb declares (30 GB of RGB once decoded); its file is a few KB.
BOMB_SIDE = 100_000


def _rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode("ascii")).digest()[:8], "big"))


def _colour(rng: random.Random, alpha: int | None = None) -> tuple[int, ...]:
    rgb = tuple(rng.randrange(256) for _ in range(3))
    return rgb if alpha is None else (*rgb, alpha)


def _scene(seed: str, width: int, height: int, style: Style) -> Image.Image:
    """The still of a seed: a gradient with shapes whose colours and places derive from it."""
    rng = _rng(seed)
    first, second = _colour(rng), _colour(rng)
    if style == "sketch":
        first, second = (250, 250, 245), (225, 225, 220)
    ramp = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize((width, height), Image.Resampling.BILINEAR)
    canvas = Image.composite(Image.new("RGB", (width, height), first), Image.new("RGB", (width, height), second), ramp)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    unit = min(width, height)
    for _ in range(rng.randint(8, 18)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * unit
        box = (cx - r, cy - r, cx + r, cy + r)
        if style == "sketch":
            outline, fill, line = (40, 40, 40, 230), None, max(1, unit // 150)
        elif style == "illustration":
            outline, fill, line = (20, 20, 30, 255), _colour(rng, 255), max(2, unit // 100)
        else:
            outline, fill, line = None, _colour(rng, rng.randint(90, 200)), 0
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse(box, fill=fill, outline=outline, width=line)
        elif shape == 1:
            draw.rectangle(box, fill=fill, outline=outline, width=line)
        else:
            points = [
                (cx + r * math.cos(a), cy + r * math.sin(a))
                for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(3, 6)))
            ]
            draw.polygon(points, fill=fill, outline=outline, width=line)
    if style == "photo":
        layer = layer.filter(ImageFilter.GaussianBlur(radius=max(1, unit // 200)))
    canvas.paste(layer, mask=layer.getchannel("A"))
    return canvas


@lru_cache(maxsize=16)
def render_image(seed: str, width: int, height: int, style: Style = "photo") -> bytes:
    """A PNG of `width` x `height` for the seed (same arguments, same bytes)."""
    out = io.BytesIO()
    _scene(seed, width, height, style).save(out, format="PNG", compress_level=3)
    return out.getvalue()


@lru_cache(maxsize=4)
def render_video(seed: str, width: int, height: int, seconds: int, style: Style = "photo") -> bytes:
    """An MP4 (H.264, yuv420p, `+faststart`) of `seconds` at VIDEO_FPS: a ball crossing the seed's scene.

    Frames are drawn with Pillow and piped to ffmpeg as raw RGB; `width` and `height` must be even.
    """
    if width % 2 or height % 2:
        raise ValueError("H.264 in yuv420p needs an even width and height")
    background = _scene(seed, width, height, style)
    rng = _rng(seed + "/motion")
    ball = _colour(rng)
    radius = max(4, min(width, height) // 8)
    frames = seconds * VIDEO_FPS
    with tempfile.TemporaryDirectory(prefix="genhub-sim-") as where:
        target = Path(where) / "clip.mp4"
        command = [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            str(VIDEO_FPS),
            "-i",
            "pipe:0",
            "-threads",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "28",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(target),
        ]
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=FFMPEG_ENV
        )
        assert proc.stdin is not None
        try:
            for index in range(frames):
                t = index / max(1, frames - 1)
                frame = background.copy()
                draw = ImageDraw.Draw(frame)
                x = radius + t * (width - 2 * radius)
                y = height / 2 + math.sin(t * 2 * math.pi) * (height / 2 - radius)
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ball, outline=(0, 0, 0), width=2)
                draw.rectangle((0, height - 6, round(t * width), height), fill=(255, 255, 255))
                proc.stdin.write(frame.tobytes())
            _, errors = proc.communicate(timeout=ENCODE_TIMEOUT_SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg could not encode the simulated clip: {errors.decode(errors='replace')[-500:]}")
        return target.read_bytes()


def pixel_bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A PNG of a few KB declaring `side` x `side` RGB pixels (the data of its first rows only)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * side) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Not an image</title></head>"
    b"<body><h1>Simulated provider</h1><script>document.title = 'served as an image?'</script></body></html>\n"
)


def hostile(kind: Hostile, whole: bytes) -> bytes:
    """The bad output of `kind` in place of `whole` (the real output it spoils, for `truncated`)."""
    if kind == "html":
        return HTML_PAGE
    if kind == "bomb":
        return pixel_bomb_png()
    if kind == "truncated":
        return whole[: len(whole) // 2]
    return b""
