"""Keyset pagination: a stable order on (created_at, id), cursors opaque to clients."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            padded = value + "=" * (-len(value) % 4)
            stamp, _, ident = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
            created = datetime.fromisoformat(stamp)
            if created.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(created, uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput.single("after", "is not a valid cursor") from exc


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int
    after: Cursor | None = None

    @classmethod
    def parse(cls, first: int | None, after: str | None) -> PageRequest:
        """`first=None` (an explicit null from the client) means the default page size."""
        if first is None:
            first = DEFAULT_PAGE_SIZE
        if first < 0 or first > MAX_PAGE_SIZE:
            raise InvalidInput.single("first", f"must be between 0 and {MAX_PAGE_SIZE}")
        return cls(first, Cursor.decode(after) if after else None)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
