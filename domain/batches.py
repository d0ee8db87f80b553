"""Requests that name many objects at once: how many one request may name."""

from __future__ import annotations

from domain.errors import InvalidInput

#: Generations one deleteGenerations request may name (distinct ids).
MAX_GENERATION_DELETIONS = 100


def check_batch(count: int, *, field: str, limit: int) -> None:
    """A batch names 1 to `limit` distinct objects; else InvalidInput on `field`."""
    if count == 0:
        raise InvalidInput.single(field, "must name at least one")
    if count > limit:
        raise InvalidInput.single(field, f"at most {limit} at once")
