"""The compilable root fields: their authorization and arguments in SQL, as the read use cases apply them.

Each root's arguments arrive validated (the GraphQL layer parses them with the resolvers'
own functions and takes the resolver path on any problem). A root's SQL text depends only
on the selection and on its `variant` (which optional arguments are present), so a
statement is built once per (selection, variants) and its values are bound per request.

Authorization, as domain/use_cases/reads.py and access.py decide it:
- `generations`: the viewer's own generations and those of boards they belong to (one
  index-ordered branch each, merged); with `filter.boardId`, that board's generations
  when the viewer is a member, else none;
- `generation(id)`: own, a member's board's, or any for an admin; otherwise null;
- `chunks`, `chunk(id)`, `creditLedger`: the viewer's own; `credits`: the viewer's balance
  (zeros without an account).
Pages are keyset pages on (created_at, id), newest first, `first` + 1 rows to learn `hasNextPage`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.shapes import Aliases, literal, object_json

#: Marks a cursor in the statement's JSON: \u0001, this nonce, then micros and id. The nonce is
#: drawn per process, so no stored text can pose as a cursor to be signed.
CURSOR_NONCE = secrets.token_hex(8)

Slots = Mapping[str, str]  # argument name -> its placeholder ($n)
#: The largest statement compiled; a wider selection (the document limits allow many aliases)
#: is answered by the resolvers, so no client can make PostgreSQL parse an outsized statement.
MAX_STATEMENT_CHARS = 64 * 1024


def cursor_marker(t: str) -> str:
    micros = f"(extract(epoch from {t}.created_at) * 1000000)::bigint"
    return f"(chr(1) || '{CURSOR_NONCE}:' || {micros} || ':' || {t}.id::text)"


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


RootArgs = GenerationsArgs | GenerationArgs | OwnPageArgs | ChunkArgs | ViewerArgs


def _page_values(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = {"first": page.first}
    if page.after is not None:
        values["after_at"], values["after_id"] = page.after
    return values


def values_of(args: RootArgs) -> dict[str, Any]:
    """The bind values by slot name (a slot the variant does not use is simply not bound)."""
    if isinstance(args, GenerationsArgs):
        values = {"viewer": args.viewer, **_page_values(args.page)}
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
        return {"viewer": args.viewer, **_page_values(args.page)}
    if isinstance(args, ChunkArgs):
        return {"viewer": args.viewer, "id": args.id}
    return {"viewer": args.viewer}


def variant_of(args: RootArgs) -> tuple[str, ...]:
    """The slots a root's statement uses for these arguments, in binding order."""
    return tuple(values_of(args))


# ---------------------------------------------------------------- connections


def _keyset(t: str, s: Slots) -> str:
    if "after_at" not in s:
        return ""
    return f" AND ({t}.created_at, {t}.id) < ({s['after_at']}::timestamptz, {s['after_id']}::uuid)"


def _connection(
    type_name: str, node_shape: str, fields: tuple[Selected, ...], page_sql: str, s: Slots, aliases: Aliases
) -> str:
    """A Relay connection over the rows of `page_sql` (first + 1 of them, newest first)."""
    newest = "created_at DESC, id DESC"
    parts: list[str] = []
    for f in fields:
        if f.args:
            raise NotCompilable(f"{type_name}.{f.name} takes arguments")
        if f.name == "__typename":
            value = literal(f"{type_name}Connection")
        elif f.name == "edges" and f.fields:
            row = aliases.next()
            edge: list[str] = []
            for e in f.fields:
                if e.name == "__typename":
                    edge.append(f"{literal(e.key)}, {literal(type_name + 'Edge')}")
                elif e.name == "cursor" and not e.fields:
                    edge.append(f"{literal(e.key)}, {cursor_marker(row)}")
                elif e.name == "node" and e.fields:
                    edge.append(f"{literal(e.key)}, {object_json(node_shape, row, e.fields, aliases, 1)}")
                else:
                    raise NotCompilable(f"{type_name}Edge.{e.name}")
            order = ", ".join(f"{row}.{part}" for part in newest.split(", "))
            value = (
                f"coalesce((SELECT json_agg(json_build_object({', '.join(edge)}) ORDER BY {order}) "
                f"FROM shown {row}), '[]'::json)"
            )
        elif f.name == "pageInfo" and f.fields:
            info: list[str] = []
            for p in f.fields:
                if p.name == "__typename":
                    info.append(f"{literal(p.key)}, 'PageInfo'")
                elif p.name == "hasNextPage" and not p.fields:
                    info.append(f"{literal(p.key)}, ((SELECT count(*) FROM page) > {s['first']})")
                elif p.name == "endCursor" and not p.fields:
                    last = aliases.next()
                    marker = cursor_marker(last)
                    info.append(
                        f"{literal(p.key)}, (SELECT {marker} FROM shown {last} "
                        f"ORDER BY {last}.created_at ASC, {last}.id ASC LIMIT 1)"
                    )
                else:
                    raise NotCompilable(f"PageInfo.{p.name}")
            value = f"json_build_object({', '.join(info)})"
        else:
            raise NotCompilable(f"{type_name}Connection.{f.name}")
        parts.append(f"{literal(f.key)}, {value}")
    return (
        f"(WITH page AS ({page_sql} ORDER BY {newest} LIMIT {s['first']} + 1), "
        f"shown AS (SELECT * FROM page ORDER BY {newest} LIMIT {s['first']}) "
        f"SELECT json_build_object({', '.join(parts)}))"
    )


def _generation_filters(t: str, s: Slots) -> str:
    sql = ""
    if "statuses" in s:
        sql += f" AND {t}.status = ANY({s['statuses']}::varchar[])"
    if "model" in s:
        sql += f" AND {t}.model_id = {s['model']}::uuid"
    return sql + _keyset(t, s)


def generations_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    g = aliases.next()
    filters = _generation_filters(g, s)
    newest = f"ORDER BY {g}.created_at DESC, {g}.id DESC LIMIT {s['first']} + 1"
    if "board" in s:
        member = (
            f"SELECT 1 FROM board_members m WHERE m.board_id = {s['board']}::uuid AND m.user_id = {s['viewer']}::uuid"
        )
        page = (
            f"SELECT {g}.* FROM generations {g} WHERE {g}.board_id = {s['board']}::uuid AND EXISTS ({member}){filters}"
        )
    else:
        own = f"SELECT {g}.* FROM generations {g} WHERE {g}.user_id = {s['viewer']}::uuid{filters} {newest}"
        boards = (
            f"SELECT {g}.* FROM generations {g} JOIN board_members m ON m.board_id = {g}.board_id "
            f"AND m.user_id = {s['viewer']}::uuid WHERE {g}.user_id <> {s['viewer']}::uuid{filters} {newest}"
        )
        page = f"SELECT * FROM (({own}) UNION ALL ({boards})) {aliases.next()}"
    return _connection("Generation", "Generation", root.fields, page, s, aliases)


def generation_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    g = aliases.next()
    member = f"SELECT 1 FROM board_members m WHERE m.board_id = {g}.board_id AND m.user_id = {s['viewer']}::uuid"
    readable = f"({s['admin']}::boolean OR {g}.user_id = {s['viewer']}::uuid OR EXISTS ({member}))"
    return (
        f"(SELECT {object_json('Generation', g, root.fields, aliases)} FROM generations {g} "
        f"WHERE {g}.id = {s['id']}::uuid AND {readable})"
    )


def chunks_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    c = aliases.next()
    page = f"SELECT {c}.* FROM chunks {c} WHERE {c}.user_id = {s['viewer']}::uuid{_keyset(c, s)}"
    return _connection("Chunk", "Chunk", root.fields, page, s, aliases)


def chunk_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    c = aliases.next()
    return (
        f"(SELECT {object_json('Chunk', c, root.fields, aliases)} FROM chunks {c} "
        f"WHERE {c}.id = {s['id']}::uuid AND {c}.user_id = {s['viewer']}::uuid)"
    )


def ledger_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    e = aliases.next()
    page = f"SELECT {e}.* FROM credit_ledger {e} WHERE {e}.user_id = {s['viewer']}::uuid{_keyset(e, s)}"
    return _connection("Ledger", "LedgerEntry", root.fields, page, s, aliases)


def credits_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    a, t = aliases.next(), aliases.next()
    # The viewer's account, or zeros without one: one row either way, one object built.
    balance = (
        f"SELECT coalesce({a}.balance, 0) AS balance, coalesce({a}.reserved, 0) AS reserved FROM (SELECT 1) one "
        f"LEFT JOIN credit_accounts {a} ON {a}.user_id = {s['viewer']}::uuid"
    )
    return f"(SELECT {object_json('CreditBalance', t, root.fields, aliases)} FROM ({balance}) {t})"


RootSql = Callable[[Selected, Slots, Aliases], str]

#: Query fields compiled, by schema name.
ROOTS: dict[str, RootSql] = {
    "generations": generations_sql,
    "generation": generation_sql,
    "chunks": chunks_sql,
    "chunk": chunk_sql,
    "credits": credits_sql,
    "creditLedger": ledger_sql,
}


def statement(roots: Sequence[tuple[Selected, tuple[str, ...]]]) -> str:
    """One statement for the operation's root fields: `SELECT json_build_object(key, value, ...)`.

    `roots`: each root field with its variant (the slot names it binds, in order); the
    placeholders run $1.. across the roots in that order.
    """
    aliases = Aliases()
    parts: list[str] = []
    n = 0
    for root, slots in roots:
        compile_root = ROOTS.get(root.name)
        if compile_root is None:
            raise NotCompilable(f"Query.{root.name}")
        placeholders = {name: f"${n + i + 1}" for i, name in enumerate(slots)}
        n += len(slots)
        parts.append(f"{literal(root.key)}, {compile_root(root, placeholders, aliases)}")
    if not parts or len(parts) > 50:
        raise NotCompilable("no root field, or too many")
    sql = f"SELECT json_build_object({', '.join(parts)})::text"
    if len(sql) > MAX_STATEMENT_CHARS:
        raise NotCompilable("the statement would be too large")
    return sql
