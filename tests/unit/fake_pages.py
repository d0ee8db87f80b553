"""Keyset pages over in-memory rows, as the SQL repositories read them (for the unit tests' fakes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.pagination import Page, PageRequest


def newest_first(items: Iterable[Any], page: PageRequest) -> Page[Any]:
    """Keyset pagination as the SQL repositories do it: (created_at, id) descending, after the cursor."""
    ordered = sorted(items, key=lambda x: (x.created_at, x.id), reverse=True)
    if page.after is not None:
        after = (page.after.created_at, page.after.id)
        ordered = [x for x in ordered if (x.created_at, x.id) < after]
    if page.before is not None:
        before = (page.before.created_at, page.before.id)
        ordered = [x for x in ordered if (x.created_at, x.id) > before]
    if page.backward:
        ordered.reverse()
    return page.cut(ordered[: page.first + 1])
