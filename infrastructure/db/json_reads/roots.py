"""The compilable root fields: their authorization and arguments in SQL, as the read use cases apply them.

Each root's arguments arrive validated (the GraphQL layer parses them with the resolvers'
own functions and takes the resolver path on any problem). A root's SQL text depends only
on the selection and on its `variant` (which optional arguments are present), so a
statement is built once per (selection, variants) and its values are bound per request.

Authorization, as domain/use_cases/reads.py, access.py and catalogue.py decide it:
- `generations`: the viewer's own generations and those of boards they belong to (one
  index-ordered branch each, merged); with `filter.boardId`, that board's generations
  when the viewer is a member, else none;
- `generation(id)`: own, a member's board's, or any for an admin; otherwise null;
- `chunks`, `chunk(id)`, `creditLedger`: the viewer's own; `credits`: the viewer's balance
  (zeros without an account);
- `boards`, `board(id)`: the boards the viewer is a member of (no admin exception), with
  the viewer's role; fields below a board are in board_shapes.py;
- `models`: active ones, or all when `includeInactive` (the caller compiles that for admins
  only); `presets`: all, or one model's. Both are public (no viewer is bound).
Pages are keyset pages on (created_at, id), newest first, `first` + 1 rows to learn `hasNextPage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from infrastructure.db.json_reads.arguments import (
    BoardArgs,
    ChunkArgs,
    GenerationArgs,
    GenerationsArgs,
    ModelsArgs,
    OwnPageArgs,
    Page,
    PresetsArgs,
    RootArgs,
    ViewerArgs,
    page_values,
    values_of,
    variant_of,
)
from infrastructure.db.json_reads.board_shapes import boards_of
from infrastructure.db.json_reads.connections import connection, keyset
from infrastructure.db.json_reads.marks import CURSOR_NONCE
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.shapes import object_json
from infrastructure.db.json_reads.sql_text import Aliases, Slots, check_keys, json_object, literal

__all__ = [
    "CURSOR_NONCE",
    "MAX_STATEMENT_CHARS",
    "ROOTS",
    "BoardArgs",
    "ChunkArgs",
    "GenerationArgs",
    "GenerationsArgs",
    "ModelsArgs",
    "OwnPageArgs",
    "Page",
    "PresetsArgs",
    "RootArgs",
    "ViewerArgs",
    "page_values",
    "statement",
    "values_of",
    "variant_of",
]

#: The largest statement compiled; a wider selection (the document limits allow many aliases)
#: is answered by the resolvers, so no client can make PostgreSQL parse an outsized statement.
MAX_STATEMENT_CHARS = 64 * 1024


# ---------------------------------------------------------------- roots


def _generation_filters(t: str, s: Slots) -> str:
    sql = ""
    if "statuses" in s:
        sql += f" AND {t}.status = ANY({s['statuses']}::varchar[])"
    if "model" in s:
        sql += f" AND {t}.model_id = {s['model']}::uuid"
    return sql + keyset(t, s)


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
    return connection("Generation", "Generation", root.fields, page, s, aliases, object_json)


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
    page = f"SELECT {c}.* FROM chunks {c} WHERE {c}.user_id = {s['viewer']}::uuid{keyset(c, s)}"
    return connection("Chunk", "Chunk", root.fields, page, s, aliases, object_json)


def chunk_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    c = aliases.next()
    return (
        f"(SELECT {object_json('Chunk', c, root.fields, aliases)} FROM chunks {c} "
        f"WHERE {c}.id = {s['id']}::uuid AND {c}.user_id = {s['viewer']}::uuid)"
    )


def ledger_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    e = aliases.next()
    page = f"SELECT {e}.* FROM credit_ledger {e} WHERE {e}.user_id = {s['viewer']}::uuid{keyset(e, s)}"
    return connection("Ledger", "LedgerEntry", root.fields, page, s, aliases, object_json)


def credits_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    a, t = aliases.next(), aliases.next()
    # The viewer's account, or zeros without one: one row either way, one object built.
    balance = (
        f"SELECT coalesce({a}.balance, 0) AS balance, coalesce({a}.reserved, 0) AS reserved FROM (SELECT 1) one "
        f"LEFT JOIN credit_accounts {a} ON {a}.user_id = {s['viewer']}::uuid"
    )
    return f"(SELECT {object_json('CreditBalance', t, root.fields, aliases)} FROM ({balance}) {t})"


def boards_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    b = aliases.next()
    source = boards_of(s["viewer"], aliases)
    return (
        f"coalesce((SELECT json_agg({object_json('Board', b, root.fields, aliases)} ORDER BY {b}.created_at, {b}.id) "
        f"FROM {source} {b}), '[]'::json)"
    )


def board_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    b = aliases.next()
    source = boards_of(s["viewer"], aliases)
    return f"(SELECT {object_json('Board', b, root.fields, aliases)} FROM {source} {b} WHERE {b}.id = {s['id']}::uuid)"


# Python's sort of the catalogue snapshot (infrastructure/catalogue_cache.py) compares code
# points: the "C" collation compares UTF-8 bytes, which orders text the same way.


def models_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    m = aliases.next()
    kind = f" AND {m}.kind = {s['kind']}::text" if "kind" in s else ""
    return (
        f"coalesce((SELECT json_agg({object_json('AiModel', m, root.fields, aliases)} "
        f'ORDER BY {m}.kind COLLATE "C", {m}.slug COLLATE "C") '
        f"FROM models {m} WHERE ({s['all']}::boolean OR {m}.is_active){kind}), '[]'::json)"
    )


def presets_sql(root: Selected, s: Slots, aliases: Aliases) -> str:
    p = aliases.next()
    model = f" WHERE {p}.model_id = {s['model']}::uuid" if "model" in s else ""
    return (
        f"coalesce((SELECT json_agg({object_json('Preset', p, root.fields, aliases)} "
        f'ORDER BY {p}.name COLLATE "C", {p}.id::text) FROM presets {p}{model}), '
        "'[]'::json)"
    )


RootSql = Callable[[Selected, Slots, Aliases], str]

#: Query fields compiled, by schema name.
ROOTS: dict[str, RootSql] = {
    "generations": generations_sql,
    "generation": generation_sql,
    "chunks": chunks_sql,
    "chunk": chunk_sql,
    "credits": credits_sql,
    "creditLedger": ledger_sql,
    "boards": boards_sql,
    "board": board_sql,
    "models": models_sql,
    "presets": presets_sql,
}


def statement(roots: Sequence[tuple[Selected, tuple[str, ...]]], nested: Sequence[tuple[str, ...]] = ()) -> str:
    """One statement for the operation's root fields: `SELECT json_build_object(key, value, ...)`.

    `roots`: each root field with its variant (the slot names it binds, in order); `nested`:
    the variant of each nested field that takes values per request, by its `Selected.slot`.
    The placeholders run $1.. across the roots in that order, then across the nested fields.
    """
    check_keys(len(roots), "Query")  # before any root is written
    n = 0
    root_slots: list[dict[str, str]] = []
    for _, slots in roots:
        root_slots.append({name: f"${n + i + 1}" for i, name in enumerate(slots)})
        n += len(slots)
    nested_slots: list[dict[str, str]] = []
    for slots in nested:
        nested_slots.append({name: f"${n + i + 1}" for i, name in enumerate(slots)})
        n += len(slots)
    aliases = Aliases(nested_slots)
    parts: list[str] = []
    for (root, _), placeholders in zip(roots, root_slots, strict=True):
        compile_root = ROOTS.get(root.name)
        if compile_root is None:
            raise NotCompilable(f"Query.{root.name}")
        aliases.viewer = placeholders.get("viewer", "")
        parts.append(f"{literal(root.key)}, {compile_root(root, placeholders, aliases)}")
    if not parts:
        raise NotCompilable("no root field")
    sql = f"SELECT {json_object(parts, 'Query')}::text"
    if len(sql) > MAX_STATEMENT_CHARS:
        raise NotCompilable("the statement would be too large")
    return sql
