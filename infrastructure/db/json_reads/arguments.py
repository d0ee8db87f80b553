"""The values a compiled root binds: each root's arguments, parsed by the GraphQL layer, by slot name.

A root's `variant` (the slot names its values fill, in order) picks its statement text
(roots.py): an optional argument that is absent leaves its condition out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Page:
    """A keyset page request: `first` rows after the (created_at, id) position `after`."""

    first: int
    after: tuple[datetime, uuid.UUID] | None


@dataclass(frozen=True, slots=True)
class GenerationsArgs:
    viewer: uuid.UUID
    page: Page
    statuses: tuple[str, ...] = ()
    board: uuid.UUID | None = None
    model: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class GenerationArgs:
    viewer: uuid.UUID
    admin: bool
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class OwnPageArgs:
    """A page of the viewer's own rows (chunks, ledger entries)."""

    viewer: uuid.UUID
    page: Page


@dataclass(frozen=True, slots=True)
class ChunkArgs:
    viewer: uuid.UUID
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ViewerArgs:
    viewer: uuid.UUID


@dataclass(frozen=True, slots=True)
class BoardArgs:
    viewer: uuid.UUID
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ModelsArgs:
    """`kind`: the stored value of a ModelKind, or None; `include_inactive` only for admins (the caller checks)."""

    include_inactive: bool
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class PresetsArgs:
    model: uuid.UUID | None = None


RootArgs = (
    GenerationsArgs | GenerationArgs | OwnPageArgs | ChunkArgs | ViewerArgs | BoardArgs | ModelsArgs | PresetsArgs
)


def page_values(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = {"first": page.first}
    if page.after is not None:
        values["after_at"], values["after_id"] = page.after
    return values


def values_of(args: RootArgs) -> dict[str, Any]:
    """The bind values by slot name (a slot the variant does not use is simply not bound)."""
    if isinstance(args, GenerationsArgs):
        values = {"viewer": args.viewer, **page_values(args.page)}
        if args.statuses:
            values["statuses"] = list(args.statuses)
        if args.board is not None:
            values["board"] = args.board
        if args.model is not None:
            values["model"] = args.model
        return values
    if isinstance(args, GenerationArgs):
        return {"viewer": args.viewer, "admin": args.admin, "id": args.id}
    if isinstance(args, OwnPageArgs):
        return {"viewer": args.viewer, **page_values(args.page)}
    if isinstance(args, ChunkArgs | BoardArgs):
        return {"viewer": args.viewer, "id": args.id}
    if isinstance(args, ModelsArgs):
        return {"all": args.include_inactive} | ({} if args.kind is None else {"kind": args.kind})
    if isinstance(args, PresetsArgs):
        return {} if args.model is None else {"model": args.model}
    return {"viewer": args.viewer}


def variant_of(args: RootArgs) -> tuple[str, ...]:
    """The slots a root's statement uses for these arguments, in binding order."""
    return tuple(values_of(args))
