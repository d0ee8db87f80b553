"""Every row that still names a user or a generation, found through the schema's foreign keys.

The tables are read from pg_constraint, not listed by hand: a table added later that references
`users` or `generations` is counted (and so fails a deletion test) until the deletion handles it
or it is added to a `kept` allow-list on purpose.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

#: (table, column) of every single-column foreign key to the table named `:target`.
REFERENCES = text(
    "SELECT cl.relname, a.attname FROM pg_constraint c"
    " JOIN pg_class cl ON cl.oid = c.conrelid"
    " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
    " WHERE c.contype = 'f' AND c.confrelid = to_regclass(:target) AND cardinality(c.conkey) = 1"
    " ORDER BY 1, 2"
)

#: Kept for a deleted account on purpose (the users row itself stays as the tombstone): its money
#: history and its account, and the creator of a board it co-owned, which stays the other owners'
#: (an id naming the tombstone, no content).
KEPT_FOR_A_DELETED_USER = frozenset(
    {("credit_ledger", "user_id"), ("credit_accounts", "user_id"), ("boards", "created_by")}
)


async def references_to(conn: AsyncConnection, target: str) -> list[tuple[str, str]]:
    rows = await conn.execute(REFERENCES, {"target": target})
    return [(table, column) for table, column in rows]


async def rows_naming_user(
    conn: AsyncConnection, user_id: uuid.UUID, *, kept: frozenset[tuple[str, str]] = KEPT_FOR_A_DELETED_USER
) -> dict[str, int]:
    """`table.column` -> rows naming the user, for every foreign key to users outside `kept`."""
    counts: dict[str, int] = {}
    for table, column in await references_to(conn, "users"):
        if (table, column) in kept:
            continue
        sql = text(f'SELECT count(*) FROM "{table}" WHERE "{column}" = :u')
        counts[f"{table}.{column}"] = (await conn.execute(sql, {"u": user_id})).scalar_one()
    return counts


async def rows_naming_generations(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[str, int]:
    """`table.column` -> rows naming one of the generations: theirs and every foreign key to generations."""
    counts: dict[str, int] = {}
    for table, column in [("generations", "id"), *await references_to(conn, "generations")]:
        sql = text(f'SELECT count(*) FROM "{table}" WHERE "{column}" = ANY(:ids)')
        counts[f"{table}.{column}"] = (await conn.execute(sql, {"ids": ids})).scalar_one()
    return counts
