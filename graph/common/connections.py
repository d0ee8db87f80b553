"""Relay connections built from domain pages: cursors (created_at + id, signed), pageInfo, and
the paging arguments every connection takes (`first`/`after` forward, `last`/`before` backward)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Protocol

import strawberry

from domain.cursors import Cursor, CursorCodec
from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest
from graph.common.types import PageInfo


class Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...


def cursor_of(item: Keyed, cursors: CursorCodec) -> str:
    return cursors.encode(Cursor(item.created_at, item.id))


First = Annotated[
    int | None,
    strawberry.argument(
        description=(
            f"Page forward: at most this many items (0 to {MAX_PAGE_SIZE}; omitted or null: {DEFAULT_PAGE_SIZE}), "
            "from the start of the list or from `after`. Not together with `last`."
        )
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(description="Only items after this cursor (an `endCursor` or edge `cursor` given earlier)."),
]
Last = Annotated[
    int | None,
    strawberry.argument(
        description=(
            f"Page backward: the last this many items (0 to {MAX_PAGE_SIZE}) before `before`, or of the whole list; "
            "still listed in the list's order. Not together with `first`."
        )
    ),
]
Before = Annotated[
    str | None,
    strawberry.argument(description="Only items before this cursor (a `startCursor` or edge `cursor` given earlier)."),
]


def page_request(
    cursors: CursorCodec, first: int | None, after: str | None, last: int | None, before: str | None
) -> PageRequest:
    """The client's paging arguments, checked (InvalidInput names the argument at fault)."""
    return PageRequest.parse(first, after, cursors=cursors, last=last, before=before)


def page_info(page: Page[Any], cursors: list[str]) -> PageInfo:
    """PageInfo of `page`, whose edges carry `cursors` in order."""
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
