"""Credit accounts and the immutable ledger; every balance change is one conditional UPDATE."""

from __future__ import annotations

import uuid
from typing import cast

from sqlalchemy import BigInteger, Table, bindparam, case, func, or_, select, update

from domain.credits import BALANCE_KINDS, MAX_BALANCE, RESERVED_KINDS, CreditBalance, LedgerEntry, LedgerKind
from domain.pagination import Page, PageRequest
from infrastructure.db.models import CreditAccountRow, CreditLedgerRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, keyset
from infrastructure.db.tables import CREDIT_LEDGER
from infrastructure.ledger_metrics import note_ledger_move


def _entry(row: AnyRow) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        user_id=row.user_id,
        kind=LedgerKind(row.kind),
        amount=row.amount,
        idempotency_key=row.idempotency_key,
        created_at=aware(row.created_at),
        generation_id=row.generation_id,
        reason=row.reason,
        actor_id=row.actor_id,
    )


_ACCOUNTS = cast(Table, CreditAccountRow.__table__)
_NEW_BALANCE = _ACCOUNTS.c.balance + bindparam("balance_delta", type_=BigInteger)
_NEW_RESERVED = _ACCOUNTS.c.reserved + bindparam("reserved_delta", type_=BigInteger)
_CHANGE = (
    update(_ACCOUNTS)
    .where(
        _ACCOUNTS.c.user_id == bindparam("account"),
        _NEW_RESERVED >= 0,
        _NEW_BALANCE - _NEW_RESERVED >= 0,
        # domain.credits.check_cap (a move that lowers the balance always passes), in the same
        # statement as the row lock so concurrent grants cannot pass the cap together
        or_(_NEW_BALANCE <= MAX_BALANCE, _ACCOUNTS.c.balance >= _NEW_BALANCE),
    )
    .values(balance=_NEW_BALANCE, reserved=_NEW_RESERVED, version=_ACCOUNTS.c.version + 1)
    .returning(_ACCOUNTS.c.balance, _ACCOUNTS.c.reserved)
)


class SqlCreditRepository(SqlRepository):
    async def ensure_account(self, user_id: uuid.UUID) -> None:
        stmt = self.insert(CreditAccountRow).values(user_id=user_id, balance=0, reserved=0, version=0)
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))

    async def balance(self, user_id: uuid.UUID) -> CreditBalance:
        stmt = select(_ACCOUNTS.c.balance, _ACCOUNTS.c.reserved).where(_ACCOUNTS.c.user_id == user_id)
        row = await self.row(stmt)
        return CreditBalance(int(row[0]), int(row[1])) if row else CreditBalance(0, 0)

    async def add_entry(self, entry: LedgerEntry) -> bool:
        table = CreditLedgerRow.__table__
        stmt = self.prepared(
            "ledger.add",
            lambda insert: (
                insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(table.c.id)
            ),
        )
        params = {
            "id": entry.id,
            "user_id": entry.user_id,
            "kind": entry.kind.value,
            "amount": entry.amount,
            "generation_id": entry.generation_id,
            "idempotency_key": entry.idempotency_key,
            "reason": entry.reason,
            "actor_id": entry.actor_id,
            "created_at": entry.created_at,
        }
        inserted = (await self.core_execute(stmt, params)).scalar_one_or_none() is not None
        if inserted:
            note_ledger_move(self.session, entry.kind.value, entry.amount)
        return inserted

    async def change(self, user_id: uuid.UUID, *, balance_delta: int, reserved_delta: int) -> CreditBalance | None:
        # One statement: the row lock taken by UPDATE serialises concurrent moves and the
        # WHERE clause refuses any move that would make available or reserved negative, or
        # raise the balance above MAX_BALANCE.
        row = (
            await self.core_execute(
                _CHANGE, {"account": user_id, "balance_delta": balance_delta, "reserved_delta": reserved_delta}
            )
        ).one_or_none()
        return CreditBalance(int(row[0]), int(row[1])) if row else None

    async def entry_by_key(self, key: str) -> LedgerEntry | None:
        row = await self.row(select(CREDIT_LEDGER).where(CREDIT_LEDGER.c.idempotency_key == key))
        return _entry(row) if row else None

    async def ledger_page(self, user_id: uuid.UUID, page: PageRequest) -> Page[LedgerEntry]:
        e = CREDIT_LEDGER.c
        rows = await self.rows(keyset(select(CREDIT_LEDGER).where(e.user_id == user_id), page, e.created_at, e.id))
        return page.cut([_entry(r) for r in rows])

    async def ledger_totals(self, user_id: uuid.UUID) -> CreditBalance:
        amount = CREDIT_LEDGER.c.amount
        kind = CREDIT_LEDGER.c.kind
        stmt = select(
            func.coalesce(func.sum(case((kind.in_([k.value for k in BALANCE_KINDS]), amount), else_=0)), 0),
            func.coalesce(func.sum(case((kind.in_([k.value for k in RESERVED_KINDS]), amount), else_=0)), 0),
        ).where(CREDIT_LEDGER.c.user_id == user_id)
        balance, reserved = (await self.rows(stmt))[0]
        return CreditBalance(int(balance), int(reserved))

    async def open_reservation(self, generation_id: uuid.UUID) -> int:
        kinds = [k.value for k in RESERVED_KINDS]
        e = CREDIT_LEDGER.c
        stmt = select(func.coalesce(func.sum(e.amount), 0)).where(e.generation_id == generation_id, e.kind.in_(kinds))
        return int((await self.scalars(stmt))[0])
