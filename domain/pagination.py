"""Keyset pagination: a stable order on (created_at, id), cursors opaque to clients (domain/cursors.py).

Lists are ordered newest first. A page is read forward (`first`, optionally `after` a cursor)
or backward (`last`, optionally `before` a cursor); both read at most `size` + 1 rows from
an index and keep `size` of them, the extra row telling whether more lie beyond. A backward
page is read oldest first and turned round, so every page lists its items newest first, as the
Relay specification asks. `after` and `before` may be combined (the items between them);
`first` and `last` may not.

Following the specification's PageInfo algorithm, a forward page reports `has_previous`
False and a backward page `has_next` False: telling more would take a second read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.cursors import Cursor, CursorCodec
from domain.errors import InvalidInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`first`: the page size (from the client's `first` or `last`); `backward`: `last` was asked."""

    first: int
    after: Cursor | None = None
    before: Cursor | None = None
    backward: bool = False

    @classmethod
    def parse(
        cls,
        first: int | None,
        after: str | None,
        *,
        cursors: CursorCodec,
        last: int | None = None,
        before: str | None = None,
        most: int = MAX_PAGE_SIZE,
    ) -> PageRequest:
        """`first=None` and `last=None` (omitted, or an explicit null) mean a forward page of
        the default size (at most `most`).

        `after`/`before` None leave that end open; any other string must be a cursor `cursors`
        issued (an empty string is not one). `first` together with `last` is refused.
        """
        if first is not None and last is not None:
            raise InvalidInput.single("last", "cannot be combined with `first`: page forward or backward")
        backward = last is not None
        size = last if last is not None else first
        name = "last" if backward else "first"
        if size is None:
            size = min(DEFAULT_PAGE_SIZE, most)
        if size < 0 or size > most:
            raise InvalidInput.single(name, f"must be between 0 and {most}")
        return cls(
            size,
            cursors.decode(after, argument="after") if after is not None else None,
            cursors.decode(before, argument="before") if before is not None else None,
            backward,
        )

    def cut(self, rows: Sequence[T]) -> Page[T]:
        """The page from the `first` + 1 rows read in the request's direction (newest first
        forward, oldest first backward): at most `first` items, newest first."""
        more = len(rows) > self.first
        kept = list(rows[: self.first])
        if self.backward:
            kept.reverse()
            return Page(kept, has_next=False, has_previous=more)
        return Page(kept, has_next=more, has_previous=False)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    has_previous: bool = False
