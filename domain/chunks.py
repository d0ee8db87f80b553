"""Chunks (user files): server-side key generation and metadata rules.

A key is always ``user_chunks/{user_id}/{uuid}{ext}``; the user's filename is
metadata only and never reaches the key beyond a short, whitelisted extension.
"""

from __future__ import annotations

import enum
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Problems

MAX_FILENAME_LENGTH = 255
_EXT_RE = re.compile(r"^\.[a-z0-9]{1,10}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


class ChunkStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class Chunk:
    id: uuid.UUID
    user_id: uuid.UUID
    object_key: str
    filename: str
    content_type: str
    size: int
    status: ChunkStatus
    created_at: datetime
    sha256: str | None = None


def safe_filename(raw: str) -> str:
    """A display name: NFC, no control characters or path separators, bounded length."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = text.replace("/", "_").replace("\\", "_").strip().lstrip(".")
    if not text:
        text = "file"
    if len(text) > MAX_FILENAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        keep = ("." + ext) if dot and len(ext) <= 10 else ""
        text = text[: MAX_FILENAME_LENGTH - len(keep)] + keep
    return text


def extension_of(filename: str) -> str:
    _, dot, ext = filename.rpartition(".")
    candidate = f".{ext.lower()}" if dot else ""
    return candidate if _EXT_RE.match(candidate) else ""


def chunk_key(user_id: uuid.UUID, chunk_id: uuid.UUID, filename: str) -> str:
    return f"user_chunks/{user_id}/{chunk_id}{extension_of(filename)}"


def output_key(user_id: uuid.UUID, generation_id: uuid.UUID, index: int, ext: str) -> str:
    safe_ext = ext if _EXT_RE.match(ext) else ""
    return f"outputs/{user_id}/{generation_id}/{index}{safe_ext}"


def normalize_content_type(raw: str) -> str:
    return raw.split(";", 1)[0].strip().lower()


def validate_chunk_metadata(
    *,
    filename: str,
    content_type: str,
    size: int,
    sha256: str | None,
    max_size: int,
    allowed_types: frozenset[str],
    problems: Problems,
) -> None:
    if not filename or len(filename) > 4 * MAX_FILENAME_LENGTH:
        problems.add("filename", "must be 1-1020 characters")
    if not _CONTENT_TYPE_RE.match(content_type):
        problems.add("contentType", "is not a valid media type")
    elif allowed_types and content_type not in allowed_types and f"{content_type.split('/')[0]}/*" not in allowed_types:
        problems.add("contentType", f"{content_type} is not allowed")
    if size <= 0:
        problems.add("size", "must be positive")
    elif size > max_size:
        problems.add("size", f"must be at most {max_size} bytes")
    if sha256 is not None and not _SHA256_RE.match(sha256):
        problems.add("sha256", "must be 64 lowercase hex digits")
