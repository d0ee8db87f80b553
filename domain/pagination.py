"""Keyset pagination: a stable order on (created_at, id), cursors opaque to clients (domain/cursors.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.cursors import Cursor, CursorCodec
from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int
    after: Cursor | None = None

    @classmethod
    def parse(cls, first: int | None, after: str | None, *, cursors: CursorCodec) -> PageRequest:
        """`first=None` (an explicit null from the client) means the default page size.

        `after=None` starts at the top; any other string must be a cursor `cursors` issued
        (an empty string is not one).
        """
        if first is None:
            first = DEFAULT_PAGE_SIZE
        if first < 0 or first > MAX_PAGE_SIZE:
            raise InvalidInput.single("first", f"must be between 0 and {MAX_PAGE_SIZE}")
        return cls(first, cursors.decode(after, argument="after") if after is not None else None)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
