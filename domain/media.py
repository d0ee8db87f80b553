"""Media the product stores and serves: which types, how they are recognised, and their rules.

An output's type is never taken from its provider: it is sniffed from its first bytes
(`sniff`), and only the types in `ALLOWED_TYPES` are stored. Anything else is refused with a
`MediaRejected` carrying one of the stable `REJECTION_CODES`, which becomes the generation's
error code. The probing of a whole file (dimensions, duration, truncation, pixel bounds)
needs decoders and lives behind the `MediaWorkshop` port (domain/ports.py).

Thumbnails are derived from stored outputs: WebP, at most `THUMBNAIL_MAX_SIDE` pixels on
the long side, quality `THUMBNAIL_QUALITY`, at a key fixed by the output's key, so a retried
thumbnail task writes the same object and records one thumbnail.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

# ---------------------------------------------------------------- types

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/quicktime"})
ALLOWED_TYPES = IMAGE_TYPES | VIDEO_TYPES

EXTENSIONS: dict[str, str] = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
}

#: How many leading bytes `sniff` needs to recognise every allowed type.
SNIFF_BYTES = 64

# ISO base media file format brands (the `ftyp` box) of the MP4 and QuickTime families.
_QUICKTIME_BRANDS = frozenset({b"qt  "})


def sniff(head: bytes) -> str | None:
    """The allowed media type the bytes start with, or None (unknown, or not media we store).

    Only signatures are read, never the rest of the file: HTML, scripts, SVG, archives and
    anything else come back None whatever their name or declared type.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: Matroska and WebM share the header; the DocType says which (WebM only).
        return "video/webm" if b"webm" in head[:SNIFF_BYTES] else None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _QUICKTIME_BRANDS:
            return "video/quicktime"
        # HEIF/AVIF images are ISO files too: not a type we store.
        if brand[:3] in (b"hei", b"hev", b"avi", b"mif", b"msf"):
            return None
        return "video/mp4"
    return None


def is_video(content_type: str) -> bool:
    return content_type in VIDEO_TYPES


def extension_for(content_type: str) -> str:
    return EXTENSIONS.get(content_type, "")


# ---------------------------------------------------------------- what is recorded


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What probing a whole file found: its sniffed type and its geometry."""

    content_type: str
    width: int
    height: int
    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Bounds applied before anything is decoded (a declared size is checked, then decoded)."""

    max_bytes: int = 500 * 1024 * 1024
    max_pixels: int = 32 * 1024 * 1024
    max_side: int = 16384
    max_video_seconds: float = 600.0
    probe_timeout_seconds: float = 30.0


class MediaUnavailable(Exception):
    """A file could not be checked now for a reason that is not the file's: retry later.

    The decoder did not finish (timed out on a loaded host, killed by a signal or its memory
    limit, could not start) or the temporary disk is full. Finalizing releases the lease and
    tries again at the next poll, until the generation's deadline expires it.
    """


class MediaRejected(Exception):
    """A file that is not media we store; `code` is one of REJECTION_CODES."""

    def __init__(self, code: str, message: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown media rejection code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


REJECTION_CODES = frozenset(
    {
        "OUTPUT_EMPTY",  # no bytes at all
        "OUTPUT_UNSUPPORTED_TYPE",  # the bytes are not one of ALLOWED_TYPES
        "OUTPUT_TRUNCATED",  # a recognised type whose data ends early or does not decode
        "OUTPUT_TOO_MANY_PIXELS",  # declared geometry over MediaLimits (a decompression bomb)
        "OUTPUT_TOO_MANY_FRAMES",  # an animation of more frames than are decoded to check it
        "OUTPUT_TOO_LONG",  # a video over MediaLimits.max_video_seconds
        "OUTPUT_TOO_LARGE",  # more bytes than MediaLimits.max_bytes
        "OUTPUT_TOO_MANY",  # the provider answered with more than MAX_OUTPUTS outputs
    }
)

#: Outputs one generation may have: each is downloaded, probed and stored under one lease.
MAX_OUTPUTS = 16


# ---------------------------------------------------------------- thumbnails

THUMBNAIL_MAX_SIDE = 512
THUMBNAIL_QUALITY = 80
THUMBNAIL_TYPE = "image/webp"
THUMBNAIL_KIND = "thumbnail"
#: Attempts of one output's thumbnail before its failure is recorded for good.
THUMBNAIL_MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


class ThumbnailState(enum.StrEnum):
    """Where an output's thumbnail stands (null for assets that never get one)."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


def thumbnail_key(output_key: str) -> str:
    """`outputs/<user>/<generation>/<n>.<ext>` -> `thumbnails/<user>/<generation>/<n>.webp`."""
    head, sep, rest = output_key.partition("/")
    if head != "outputs" or not sep or not rest:
        raise ValueError(f"not an output key: {output_key!r}")
    stem = rest.rsplit(".", 1)[0] if "." in rest.rsplit("/", 1)[-1] else rest
    return f"thumbnails/{stem}.webp"


def download_name(object_key: str) -> str:
    """The file name a download is saved under: `<generation id>-<n>.<ext>` for outputs and thumbnails."""
    parts = object_key.split("/")
    if len(parts) == 4 and parts[0] in ("outputs", "thumbnails"):
        try:
            generation = uuid.UUID(parts[2])
        except ValueError:
            return parts[-1]
        suffix = "-thumbnail" if parts[0] == "thumbnails" else ""
        stem, dot, ext = parts[3].rpartition(".")
        return f"{generation}-{stem}{suffix}.{ext}" if dot else f"{generation}-{parts[3]}{suffix}"
    return parts[-1]
