"""The compilable GraphQL types as SQL: each field's JSON value, exactly as the resolvers serialise it.

- IDs are the UUID's text; enums the member name of the stored value; DateTime Python's
  `isoformat()` of the UTC timestamp (no fraction when it is zero, `+00:00`); JSON
  scalars the stored document (a generation's params without its `_` keys, as
  graph/generations/types.py shows them); nulls stay null.
- A relation is a correlated subquery: one object, or a `json_agg` ordered as the
  loaders order it (outputs by kind and position, inputs by position); an output's
  `thumbnail` is the asset whose `source_id` is the output's (kind 'thumbnail').
- A computed field writes its own SQL: those that need the viewer (`Generation.board`) or
  values bound per request (`Board.generations`, `Board.invitations`, `Asset.url`, whose
  URL is marked here and signed afterwards, marks.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from domain.catalogue import ModelKind
from domain.chunks import ChunkStatus
from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from domain.media import THUMBNAIL_KIND, ThumbnailState
from infrastructure.db.json_reads.board_shapes import (
    BOARD_LEAVES,
    board_generations,
    board_invitations,
    generation_board,
)
from infrastructure.db.json_reads.marks import url_marker
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.sql_text import (
    Aliases,
    Leaf,
    ObjectJson,
    check_keys,
    column,
    enumerated,
    json_object,
    literal,
    timestamp,
    uuid_text,
)

__all__ = ["SHAPES", "Aliases", "Shape", "literal", "object_json"]

#: How deep relations may nest in one statement (the document limits allow less in practice).
MAX_RELATION_DEPTH = 8

#: A field written by its own SQL (a relation that needs the viewer or per-request values):
#: (the field, its parent row's alias, the statement's aliases, the depth, object_json).
Computed = Callable[[Selected, str, Aliases, int, ObjectJson], str]


@dataclass(frozen=True, slots=True)
class Relation:
    """A field whose value is another shape: `where(parent, child)` joins them; `order` orders a list,
    or picks the first of the matching rows for one object (as the resolver picks it)."""

    target: str
    table: str = ""  # "": the same row, shown as an object (`null_when` it is absent)
    where: Callable[[str, str], str] | None = None
    many: bool = False
    order: Callable[[str], str] | None = None
    null_when: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class Shape:
    type_name: str
    leaves: Mapping[str, Leaf]
    relations: Mapping[str, Relation] = field(default_factory=dict)
    computed: Mapping[str, Computed] = field(default_factory=dict)


def asset_url(f: Selected, parent: str, aliases: Aliases, depth: int, build: ObjectJson) -> str:
    """`Asset.url(expiresInSeconds)`: marked with its storage key, signed after the statement (marks.py)."""
    if f.fields:
        raise NotCompilable("Asset.url")
    return url_marker(f"{parent}.object_key", aliases.slots_of(f)["seconds"])


def _visible_params(t: str) -> str:
    return f"(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) FROM jsonb_each({t}.params) e WHERE left(e.key, 1) <> '_')"


class AssetKindValue(enum.Enum):
    """graph/generations/types.py AssetKind's members, by stored value."""

    INPUT = "input"
    OUTPUT = "output"
    THUMBNAIL = "thumbnail"


SHAPES: dict[str, Shape] = {
    "Generation": Shape(
        "Generation",
        {
            "id": uuid_text("id"),
            "status": enumerated("status", GenerationStatus),
            "progress": column("progress"),
            "prompt": column("prompt"),
            "params": _visible_params,
            "reservedCredits": column("reserved_credits"),
            "chargedCredits": column("charged_credits"),
            "createdAt": timestamp("created_at"),
            "updatedAt": timestamp("updated_at"),
            "finishedAt": timestamp("finished_at"),
        },
        {
            # The resolvers show an error when there is a code; its message, or the code again.
            "error": Relation("GenerationError", null_when=lambda t: f"coalesce({t}.error_code, '') = ''"),
            "model": Relation("AiModel", "models", lambda p, c: f"{c}.id = {p}.model_id"),
            "preset": Relation("Preset", "presets", lambda p, c: f"{c}.id = {p}.preset_id"),
            "outputs": Relation(
                "Asset",
                "assets",
                lambda p, c: f"{c}.generation_id = {p}.id AND {c}.kind = 'output'",
                many=True,
                order=lambda c: f"{c}.position",
            ),
            "inputs": Relation(
                "Chunk",
                "generation_inputs",
                lambda p, c: f"{c}.generation_id = {p}.id",
                many=True,
                order=lambda c: f"{c}.position",
            ),
        },
        {"board": generation_board},
    ),
    "GenerationError": Shape(
        "GenerationError",
        {"code": column("error_code"), "message": lambda t: f"coalesce(nullif({t}.error_message, ''), {t}.error_code)"},
    ),
    "AiModel": Shape(
        "AiModel",
        {
            "id": uuid_text("id"),
            "slug": column("slug"),
            "name": column("name"),
            "provider": column("provider"),
            "kind": enumerated("kind", ModelKind),
            "costCredits": column("cost_credits"),
            # Without the provider routes, as graph/catalogue/types.py (domain/provider_routes.py public_capabilities).
            "capabilities": lambda t: f"({t}.capabilities - 'routes')",
            "isActive": column("is_active"),
        },
    ),
    "Preset": Shape(
        "Preset",
        {"id": uuid_text("id"), "name": column("name"), "params": column("params")},
        {"model": Relation("AiModel", "models", lambda p, c: f"{c}.id = {p}.model_id")},
    ),
    "Asset": Shape(
        "Asset",
        {
            "id": uuid_text("id"),
            "kind": enumerated("kind", AssetKindValue),
            "contentType": column("content_type"),
            "size": column("size"),
            "width": column("width"),
            "height": column("height"),
            "durationSeconds": column("duration_seconds"),
            "thumbnailStatus": enumerated("thumbnail_state", ThumbnailState),
        },
        {
            # An output's thumbnail, from its generation's assets as the resolver finds it
            # (graph/generations/types.py thumbnails_by_output): the first by (position, id).
            "thumbnail": Relation(
                "Asset",
                "assets",
                lambda p, c: (
                    f"{c}.source_id = {p}.id AND {c}.kind = '{THUMBNAIL_KIND}' AND {c}.generation_id = {p}.generation_id"
                ),
                order=lambda c: f"{c}.position, {c}.id",
            )
        },
        {"url": asset_url},
    ),
    "Chunk": Shape(
        "Chunk",
        {
            "id": uuid_text("id"),
            "filename": column("filename"),
            "contentType": column("content_type"),
            "size": column("size"),
            "sha256": column("sha256"),
            "status": enumerated("status", ChunkStatus),
            "createdAt": timestamp("created_at"),
        },
    ),
    "LedgerEntry": Shape(
        "LedgerEntry",
        {
            "id": uuid_text("id"),
            "kind": enumerated("kind", LedgerKind),
            "amount": column("amount"),
            "generationId": uuid_text("generation_id"),
            "reason": column("reason"),
            "createdAt": timestamp("created_at"),
        },
    ),
    "CreditBalance": Shape(
        "CreditBalance",
        {
            "balance": column("balance"),
            "reserved": column("reserved"),
            "available": lambda t: f"({t}.balance - {t}.reserved)",
        },
    ),
    "Board": Shape(
        "Board",
        BOARD_LEAVES["Board"],
        {
            "members": Relation(
                "BoardMember",
                "board_members",
                lambda p, c: f"{c}.board_id = {p}.id",
                many=True,
                order=lambda c: f"{c}.created_at, {c}.user_id",
            )
        },
        {"generations": board_generations, "invitations": board_invitations},
    ),
    "BoardMember": Shape(
        "BoardMember",
        BOARD_LEAVES["BoardMember"],
        {"user": Relation("User", "users", lambda p, c: f"{c}.id = {p}.user_id")},
    ),
    "User": Shape("User", BOARD_LEAVES["User"]),
    "BoardInvitation": Shape("BoardInvitation", BOARD_LEAVES["BoardInvitation"]),
}

#: A generation's inputs go through generation_inputs to the chunk: the join row is not a shape.
THROUGH: dict[tuple[str, str], tuple[str, Callable[[str, str], str]]] = {
    ("Generation", "inputs"): ("chunks", lambda link, c: f"{c}.id = {link}.chunk_id"),
}


def object_json(shape_name: str, alias: str, fields: tuple[Selected, ...], aliases: Aliases, depth: int = 0) -> str:
    """`json_build_object(...)` of the selected fields of the row `alias` of `shape_name`."""
    if depth > MAX_RELATION_DEPTH:
        raise NotCompilable("nested too deep")
    check_keys(len(fields), shape_name)  # before its relations are written
    shape = SHAPES[shape_name]
    parts: list[str] = []
    for f in fields:
        if f.args or (f.slot >= 0 and f.name not in shape.computed):
            raise NotCompilable(f"{shape_name}.{f.name} takes arguments")
        if f.name == "__typename":
            value = literal(shape.type_name)
        elif f.name in shape.computed:
            value = shape.computed[f.name](f, alias, aliases, depth, object_json)
        elif f.name in shape.leaves and not f.fields:
            value = shape.leaves[f.name](alias)
        elif f.name in shape.relations and f.fields:
            value = relation_json(shape_name, f, alias, aliases, depth)
        else:
            raise NotCompilable(f"{shape_name}.{f.name}")
        parts.append(f"{literal(f.key)}, {value}")
    return json_object(parts, shape_name)


def relation_json(shape_name: str, f: Selected, parent: str, aliases: Aliases, depth: int) -> str:
    relation = SHAPES[shape_name].relations[f.name]
    if not relation.table:
        value = object_json(relation.target, parent, f.fields, aliases, depth + 1)
        absent = relation.null_when(parent) if relation.null_when else "false"
        return f"(CASE WHEN {absent} THEN NULL ELSE {value} END)"
    assert relation.where is not None
    child = aliases.next()
    through = THROUGH.get((shape_name, f.name))
    if through is None:
        source = f"{relation.table} {child}"
        row = child
        where = relation.where(parent, child)
    else:
        row = aliases.next()
        table, join = through
        source = f"{relation.table} {child} JOIN {table} {row} ON {join(child, row)}"
        where = relation.where(parent, child)
    value = object_json(relation.target, row, f.fields, aliases, depth + 1)
    if not relation.many:
        first = f" ORDER BY {relation.order(child)} LIMIT 1" if relation.order else ""
        return f"(SELECT {value} FROM {source} WHERE {where}{first})"
    order = f" ORDER BY {relation.order(child)}" if relation.order else ""
    return f"coalesce((SELECT json_agg({value}{order}) FROM {source} WHERE {where}), '[]'::json)"
