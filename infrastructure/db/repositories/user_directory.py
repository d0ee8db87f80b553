"""The admins' reads of accounts: search by e-mail with credits, one account, its own generations."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Select, Table, func, select

from domain.credits import CreditBalance
from domain.generations import Generation
from domain.pagination import Page, PageRequest
from domain.repositories import UserSummary
from infrastructure.db.models import CreditAccountRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, keyset
from infrastructure.db.repositories.generation_rows import generation_of
from infrastructure.db.repositories.users import _user as user_of
from infrastructure.db.tables import GENERATIONS, USERS

_ACCOUNTS = cast(Table, CreditAccountRow.__table__)


def _summaries() -> Select[Any]:
    """Every user column, then the account's (0 for a user without an account)."""
    a = _ACCOUNTS.c
    return select(
        USERS,
        func.coalesce(a.balance, 0).label("credit_balance"),
        func.coalesce(a.reserved, 0).label("credit_reserved"),
    ).select_from(USERS.outerjoin(_ACCOUNTS, a.user_id == USERS.c.id))


def _summary(row: AnyRow) -> UserSummary:
    return UserSummary(user_of(row), CreditBalance(int(row.credit_balance), int(row.credit_reserved)))


class SqlUserDirectory(SqlRepository):
    async def search(self, *, email_contains: str | None, page: PageRequest) -> Page[UserSummary]:
        u = USERS.c
        stmt = _summaries()
        if email_contains:
            # autoescape: the input's `%`, `_` and the escape character itself match only themselves.
            stmt = stmt.where(u.email.icontains(email_contains, autoescape=True))
        rows = await self.rows(keyset(stmt, page, u.created_at, u.id))
        return page.cut([_summary(r) for r in rows])

    async def summary(self, user_id: uuid.UUID) -> UserSummary | None:
        row = await self.row(_summaries().where(USERS.c.id == user_id))
        return _summary(row) if row else None

    async def generations_of(self, user_id: uuid.UUID, page: PageRequest) -> Page[Generation]:
        g = GENERATIONS.c
        rows = await self.rows(keyset(select(GENERATIONS).where(g.user_id == user_id), page, g.created_at, g.id))
        return page.cut([generation_of(r) for r in rows])
