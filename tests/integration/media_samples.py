"""Real media files for the workshop's tests: pictures drawn by Pillow, clips encoded by the bundled ffmpeg."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image, ImageDraw

from infrastructure.media.ffmpeg import ffmpeg_exe


def picture(width: int = 300, height: int = 200, mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (width, height), (30, 90, 160, 255)[: len(mode)])
    ImageDraw.Draw(image).ellipse((10, 10, width - 10, height - 10), fill=(240, 200, 40, 255)[: len(mode)])
    return image


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def animation(fmt: str, frames: int = 5, size: tuple[int, int] = (120, 80)) -> bytes:
    images = [picture(*size).rotate(10 * i) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pixel_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few KB declaring `width` x `height` RGB pixels (its data: the first rows, all zero)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 8, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def zip_bomb_png(side: int = 4000) -> bytes:
    """A real, valid PNG of `side`^2 black pixels: tiny on disk, large once inflated."""
    return encoded(Image.new("L", (side, side)), "PNG", optimize=True)


def clip(
    path: Path, *, seconds: float = 2.0, size: str = "320x240", codec: str = "libx264", extra: tuple[str, ...] = ()
) -> bytes:
    """A test-pattern clip; the container follows `path`'s suffix."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    command += ["-i", f"testsrc=size={size}:rate=12", "-t", str(seconds), "-c:v", codec]
    if codec == "libx264":
        command += ["-pix_fmt", "yuv420p"]
    subprocess.run([*command, *extra, str(path)], check=True, timeout=60)
    return path.read_bytes()


def retitled_copy(source: Path, path: Path, title: str) -> bytes:
    """`source` remuxed with a `title` metadata tag (no re-encoding)."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-i", str(source), "-c", "copy", "-metadata", f"title={title}", str(path)]
    subprocess.run(command, check=True, timeout=60)
    return path.read_bytes()


def rotated_copy(source: Path, path: Path, degrees: int) -> bytes:
    """`source` remuxed with a display matrix that turns it by `degrees` (no re-encoding)."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-display_rotation", str(degrees), "-i", str(source), "-c", "copy", str(path)]
    subprocess.run(command, check=True, timeout=60)
    return path.read_bytes()


def understated_webm(data: bytes, seconds: float) -> bytes:
    """A WebM (of ffmpeg's, TimecodeScale 1 ms) whose Segment Info Duration says `seconds`."""
    element = b"\x44\x89\x88"  # Duration, an 8-byte float
    at = data.index(element) + len(element)
    return data[:at] + struct.pack(">d", seconds * 1000) + data[at + 8 :]


def audio_only_mp4(path: Path) -> bytes:
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    subprocess.run([*command, "-i", "sine=duration=1", "-c:a", "aac", str(path)], check=True, timeout=60)
    return path.read_bytes()


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
