"""Page cursors: opaque, signed, and decoded only when genhub issued them byte for byte.

Wire format (55 characters of unpadded base64url over 41 bytes)::

    version (1 byte, 1) | created_at (8 bytes, signed big-endian microseconds since
    1970-01-01 UTC) | id (16 bytes, the UUID) | tag (16 bytes, HMAC-SHA256 of the first 25
    bytes, truncated)

The key is derived from the server's secrets, so a cursor from another deployment, or from
before a secret change, is refused like any other string genhub did not issue. Decoding
checks, cheapest first: the exact length and alphabet (before any decoding), canonical
base64, the version, the tag (in constant time), the timestamp range, and finally that
re-encoding gives back the very same string. Whatever the input, the only failure is
InvalidInput naming the argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import InvalidInput

VERSION = 1
_HEADER = struct.Struct(">Bq16s")  # version, microseconds since the epoch, UUID bytes
_TAG_BYTES = 16
CURSOR_LENGTH = 55  # len(base64url(25 + 16 bytes)) without padding
_ALPHABET = re.compile(rf"[A-Za-z0-9_-]{{{CURSOR_LENGTH}}}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Every store holds this range without overflow, whatever it converts (PostgreSQL
# timestamptz reaches 294276 AD; Python's datetime stops at 9999-12-31).
EARLIEST = _EPOCH
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
_MIN_MICROS = 0
_MAX_MICROS = (LATEST - _EPOCH) // _MICROSECOND
_KEY_CONTEXT = b"genhub/page-cursor/v1"
INVALID_CURSOR = "is not a valid cursor"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a list ordered by (created_at, id), newest first."""

    created_at: datetime
    id: uuid.UUID


class CursorCodec:
    """Encodes cursors with an HMAC tag; decodes only strings it encoded itself."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> CursorCodec:
        """A codec whose key is derived from (and only from) the server's secret material."""
        if not secret:
            raise ValueError("a secret is required to sign cursors")
        material = secret.encode("utf-8", "surrogatepass")
        return cls(hmac.new(material, _KEY_CONTEXT, hashlib.sha256).digest())

    def encode(self, cursor: Cursor) -> str:
        micros = _micros(cursor.created_at)
        body = _HEADER.pack(VERSION, micros, cursor.id.bytes)
        return base64.urlsafe_b64encode(body + self._tag(body)).decode("ascii").rstrip("=")

    def decode(self, value: object, *, argument: str = "after") -> Cursor:
        """The cursor `value` encodes, or InvalidInput naming `argument`; never another exception."""
        cursor = self._checked(value)
        if cursor is None:
            raise InvalidInput.single(argument, INVALID_CURSOR)
        return cursor

    def _checked(self, value: object) -> Cursor | None:
        # Length and alphabet first: nothing longer than a cursor is ever decoded.
        if not isinstance(value, str) or len(value) != CURSOR_LENGTH or not _ALPHABET.fullmatch(value):
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=")
        except (binascii.Error, ValueError):
            return None
        body, tag = raw[: _HEADER.size], raw[_HEADER.size :]
        if len(body) != _HEADER.size or not hmac.compare_digest(tag, self._tag(body)):
            return None
        version, micros, ident = _HEADER.unpack(body)
        if version != VERSION or not _MIN_MICROS <= micros < _MAX_MICROS:
            return None
        cursor = Cursor(_EPOCH + micros * _MICROSECOND, uuid.UUID(bytes=ident))
        # Canonical form only: the one string encode() gives for this cursor (this also
        # refuses base64 whose unused trailing bits are not zero).
        return cursor if hmac.compare_digest(self.encode(cursor), value) else None

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_TAG_BYTES]


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware timestamp inside [EARLIEST, LATEST)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("cursor timestamps must be timezone-aware")
    micros = (moment - _EPOCH) // _MICROSECOND
    if not _MIN_MICROS <= micros < _MAX_MICROS:
        raise ValueError(f"cursor timestamp {moment.isoformat()} is outside {EARLIEST.year}..{LATEST.year}")
    return micros
