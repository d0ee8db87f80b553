"""Relay connections in SQL: a keyset page of `first` + 1 rows (newest first) as edges and pageInfo."""

from __future__ import annotations

from infrastructure.db.json_reads.marks import cursor_marker
from infrastructure.db.json_reads.selection import NotCompilable, Selected
from infrastructure.db.json_reads.sql_text import Aliases, ObjectJson, Slots, check_keys, json_object, literal

NEWEST = "created_at DESC, id DESC"


def keyset(t: str, s: Slots) -> str:
    """The rows of `t` after the cursor position, when the page has one."""
    if "after_at" not in s:
        return ""
    return f" AND ({t}.created_at, {t}.id) < ({s['after_at']}::timestamptz, {s['after_id']}::uuid)"


def connection(
    type_name: str,
    node_shape: str,
    fields: tuple[Selected, ...],
    page_sql: str,
    s: Slots,
    aliases: Aliases,
    build: ObjectJson,
    depth: int = 0,
) -> str:
    """A Relay connection over the rows of `page_sql` (first + 1 of them, newest first); `build`
    writes a node's object (shapes.py `object_json`)."""
    check_keys(len(fields), f"{type_name}Connection")
    parts: list[str] = []
    for f in fields:
        if f.args or f.slot >= 0:
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
                    edge.append(f"{literal(e.key)}, {build(node_shape, row, e.fields, aliases, depth + 1)}")
                else:
                    raise NotCompilable(f"{type_name}Edge.{e.name}")
            order = ", ".join(f"{row}.{part}" for part in NEWEST.split(", "))
            value = (
                f"coalesce((SELECT json_agg({json_object(edge, type_name + 'Edge')} ORDER BY {order}) "
                f"FROM shown {row}), '[]'::json)"
            )
        elif f.name == "pageInfo" and f.fields:
            info: list[str] = []
            for p in f.fields:
                if p.name == "__typename":
                    info.append(f"{literal(p.key)}, 'PageInfo'")
                elif p.name == "hasNextPage" and not p.fields:
                    info.append(f"{literal(p.key)}, ((SELECT count(*) FROM page) > {s['first']})")
                elif p.name == "hasPreviousPage" and not p.fields:
                    info.append(f"{literal(p.key)}, false")  # a forward page (backward ones are not compiled)
                elif p.name == "startCursor" and not p.fields:
                    first = aliases.next()
                    marker = cursor_marker(first)
                    info.append(
                        f"{literal(p.key)}, (SELECT {marker} FROM shown {first} "
                        f"ORDER BY {first}.created_at DESC, {first}.id DESC LIMIT 1)"
                    )
                elif p.name == "endCursor" and not p.fields:
                    last = aliases.next()
                    marker = cursor_marker(last)
                    info.append(
                        f"{literal(p.key)}, (SELECT {marker} FROM shown {last} "
                        f"ORDER BY {last}.created_at ASC, {last}.id ASC LIMIT 1)"
                    )
                else:
                    raise NotCompilable(f"PageInfo.{p.name}")
            value = json_object(info, "PageInfo")
        else:
            raise NotCompilable(f"{type_name}Connection.{f.name}")
        parts.append(f"{literal(f.key)}, {value}")
    return (
        f"(WITH page AS ({page_sql} ORDER BY {NEWEST} LIMIT {s['first']} + 1), "
        f"shown AS (SELECT * FROM page ORDER BY {NEWEST} LIMIT {s['first']}) "
        f"SELECT {json_object(parts, type_name + 'Connection')})"
    )
