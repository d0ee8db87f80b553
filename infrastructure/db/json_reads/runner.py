"""Running a compiled read: one statement on the driver pool, then the cursors signed in one pass.

A statement PostgreSQL refuses for what its text is, whatever its values (the SQLSTATE classes
of REFUSED_CLASSES: a syntax error or access rule violation, a program limit such as too many
arguments to a function), raises `StatementRefused`: the caller stops compiling that
variant. Any other failure (an outage, a cancelled statement) propagates as it is.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg

from domain.cursors import EARLIEST, Cursor, CursorCodec
from infrastructure.db.json_reads.marks import CURSOR_MARK

#: SQLSTATE classes of a refusal of the statement's text itself (the same text fails again).
REFUSED_CLASSES = ("42", "54")


class StatementRefused(Exception):
    """PostgreSQL refused the statement's text (REFUSED_CLASSES); the driver's error is its cause."""


class JsonReads:
    """Runs compiled statements (infrastructure/db/json_reads/roots.py `statement`) on a pool of its own
    or the process's driver pool; returns the answer's JSON text with signed cursors (URL marks,
    marks.py, are left for the caller, which signs them through the storage port)."""

    def __init__(self, pool: asyncpg.Pool, cursors: CursorCodec) -> None:
        self._pool = pool
        self._cursors = cursors

    async def fetch(self, sql: str, params: Sequence[Any]) -> str:
        try:
            text: str = await self._pool.fetchval(sql, *params)
        except asyncpg.PostgresError as error:
            sqlstate = str(getattr(error, "sqlstate", None) or "")
            if sqlstate[:2] in REFUSED_CLASSES:
                raise StatementRefused(f"SQLSTATE {sqlstate}") from error
            raise
        return self.sign_cursors(text)

    def sign_cursors(self, text: str) -> str:
        if "\\u0001" not in text:
            return text
        return CURSOR_MARK.sub(self._signed, text)

    def _signed(self, match: re.Match[str]) -> str:
        at = EARLIEST + timedelta(microseconds=int(match.group(1)))
        return json.dumps(self._cursors.encode(Cursor(at, uuid.UUID(match.group(2)))))
