"""Data exports (a user's portable copy of their account): states, storage key, archive member names.

An export goes PENDING -> BUILDING -> READY | FAILED, and READY -> EXPIRED when its archive
is deleted after the time to live. One user has at most one export PENDING or BUILDING.
Every name inside the archive is built here from server-side ids and sanitised text, so no
member of an archive can point outside the directory it is unpacked into (zip slip).
"""

from __future__ import annotations

import enum
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

#: The storage kind of archives: every key starts with it (infrastructure/storage/layout.py).
EXPORT_PREFIX = "exports"
ARCHIVE_CONTENT_TYPE = "application/zip"

#: `error_code` of an export whose archive would be larger than the configured limit (not retried).
EXPORT_TOO_LARGE = "EXPORT_TOO_LARGE"
#: `error_code` once every attempt failed (storage or database unreachable, a worker dying).
EXPORT_FAILED = "EXPORT_FAILED"

#: Longest file-name part of a member name (after the id prefix).
MAX_MEMBER_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT = re.compile(r"^[a-z0-9]{1,10}$")


class ExportStatus(enum.StrEnum):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"


ACTIVE_EXPORT_STATUSES = frozenset({ExportStatus.PENDING, ExportStatus.BUILDING})


@dataclass(frozen=True, slots=True)
class DataExport:
    id: uuid.UUID
    user_id: uuid.UUID
    status: ExportStatus
    created_at: datetime
    updated_at: datetime
    #: Set when READY: the archive is deleted (and the export EXPIRED) after this.
    expires_at: datetime | None = None
    object_key: str | None = None
    size: int | None = None
    sha256: str | None = None
    attempts: int = 0
    error_code: str | None = None
    finished_at: datetime | None = None

    def downloadable(self, now: datetime) -> bool:
        return (
            self.status is ExportStatus.READY
            and self.object_key is not None
            and self.expires_at is not None
            and self.expires_at > now
        )


class ArchiveTooLarge(Exception):
    """The archive grew past the configured limit while it was written; nothing is stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the archive is larger than {limit} bytes")


def export_key(user_id: uuid.UUID, export_id: uuid.UUID) -> str:
    return f"{EXPORT_PREFIX}/{user_id}/{export_id}.zip"


def safe_member_part(raw: str) -> str:
    """One path segment made of ASCII letters, digits, `.`, `_` and `-` only, never `.` or `..`.

    Everything else (separators, control characters, non-ASCII letters after their accents
    are dropped) becomes `_`; leading dots are removed; the result is at most
    MAX_MEMBER_NAME characters and never empty.
    """
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text).lstrip(".")
    if len(text) > MAX_MEMBER_NAME:
        stem, dot, ext = text.rpartition(".")
        keep = "." + ext if dot and _EXT.match(ext.lower()) else ""
        text = text[: MAX_MEMBER_NAME - len(keep)] + keep
    return text or "file"


def upload_member(chunk_id: uuid.UUID, filename: str) -> str:
    """`uploads/<chunk id>-<sanitised filename>`: the chunk's id keeps two equal names apart."""
    return f"uploads/{chunk_id}-{safe_member_part(filename)}"


def output_member(generation_id: uuid.UUID, position: int, object_key: str) -> str:
    """`outputs/<generation id>/<n>.<ext>`, the extension taken from the output's server-side key."""
    last = object_key.rsplit("/", 1)[-1]
    _, dot, ext = last.rpartition(".")
    suffix = f".{ext.lower()}" if dot and _EXT.match(ext.lower()) else ""
    return f"outputs/{generation_id}/{int(position)}{suffix}"


def is_safe_member(name: str) -> bool:
    """A relative path of plain segments: what an unzip tool writes inside its target directory only."""
    if not name or len(name) > 400 or not name.isascii() or "\\" in name or ":" in name:
        return False
    if any(not ch.isprintable() for ch in name):
        return False
    segments = name.split("/")
    return all(segment not in ("", ".", "..") for segment in segments)
