"""Boards as SQL: a board is shown only to its members, with the viewer's role (`my_role`).

As graph/boards/types.py and the read use cases (domain/use_cases/reads.py) decide it:
`Generation.board` is the board when the viewer is a member, else null; a board's
`generations` are its rows when the viewer is a member (always, for a board shown to them);
its `invitations` are the open ones (not expired at the request's clock), listed to the
roles that manage the board and empty for the others; `members` in the order they joined.
"""

from __future__ import annotations

from domain.boards import BoardRole
from domain.users import Role
from infrastructure.db.json_reads.connections import connection, keyset
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.sql_text import (
    Aliases,
    ObjectJson,
    column,
    enumerated,
    literal,
    timestamp,
    uuid_text,
)

#: The roles that see a board's pending invitations (BoardRole.can_manage).
MANAGING = ", ".join(literal(r.value) for r in BoardRole if r.can_manage)


def viewer_of(aliases: Aliases, what: str) -> str:
    if not aliases.viewer:
        raise NotCompilable(f"{what} without a viewer")
    return aliases.viewer


def boards_of(viewer: str, aliases: Aliases) -> str:
    """The boards `viewer` belongs to, each with the viewer's role as `my_role` (a row source)."""
    b, m = aliases.next(), aliases.next()
    return (
        f"(SELECT {b}.*, {m}.role AS my_role FROM boards {b} JOIN board_members {m} "
        f"ON {m}.board_id = {b}.id AND {m}.user_id = {viewer}::uuid)"
    )


def generation_board(f: Selected, parent: str, aliases: Aliases, depth: int, build: ObjectJson) -> str:
    """`Generation.board`: its board when the viewer is a member of it, else null."""
    if not f.fields or f.slot >= 0:
        raise NotCompilable("Generation.board")
    source = boards_of(viewer_of(aliases, "Generation.board"), aliases)
    b = aliases.next()
    return (
        f"(SELECT {build('Board', b, f.fields, aliases, depth + 1)} FROM {source} {b} WHERE {b}.id = {parent}.board_id)"
    )


def board_generations(f: Selected, parent: str, aliases: Aliases, depth: int, build: ObjectJson) -> str:
    """`Board.generations(first, after)`: the board's page, when the viewer is a member (the use case's check)."""
    viewer = viewer_of(aliases, "Board.generations")
    s = aliases.slots_of(f)
    g, m = aliases.next(), aliases.next()
    member = f"SELECT 1 FROM board_members {m} WHERE {m}.board_id = {parent}.id AND {m}.user_id = {viewer}::uuid"
    page = f"SELECT {g}.* FROM generations {g} WHERE {g}.board_id = {parent}.id AND EXISTS ({member}){keyset(g, s)}"
    return connection("Generation", "Generation", f.fields, page, s, aliases, build, depth)


def board_invitations(f: Selected, parent: str, aliases: Aliases, depth: int, build: ObjectJson) -> str:
    """`Board.invitations`: open at the request's clock (`now`), oldest first; empty unless the viewer manages it."""
    if not f.fields:
        raise NotCompilable("Board.invitations")
    now = aliases.slots_of(f)["now"]
    x, y, i = aliases.next(), aliases.next(), aliases.next()
    rows = (
        f"(SELECT {x}.*, {y}.name AS board_name FROM board_invitations {x} JOIN boards {y} ON {y}.id = {x}.board_id "
        f"WHERE {x}.board_id = {parent}.id AND {x}.expires_at > {now}::timestamptz)"
    )
    listed = (
        f"coalesce((SELECT json_agg({build('BoardInvitation', i, f.fields, aliases, depth + 1)} "
        f"ORDER BY {i}.created_at, {i}.email) FROM {rows} {i}), '[]'::json)"
    )
    return f"(CASE WHEN {parent}.my_role IN ({MANAGING}) THEN {listed} ELSE '[]'::json END)"


#: Leaves of the board types, by type name (shapes.py adds the relations).
BOARD_LEAVES = {
    "Board": {"id": uuid_text("id"), "name": column("name"), "myRole": enumerated("my_role", BoardRole)},
    "BoardMember": {"role": enumerated("role", BoardRole)},
    "User": {
        "id": uuid_text("id"),
        "email": column("email"),
        "role": enumerated("role", Role),
        "createdAt": timestamp("created_at"),
    },
    "BoardInvitation": {
        "boardId": uuid_text("board_id"),
        "boardName": column("board_name"),
        "email": column("email_as_typed"),
        "role": enumerated("role", BoardRole),
        "createdAt": timestamp("created_at"),
        "expiresAt": timestamp("expires_at"),
    },
}
