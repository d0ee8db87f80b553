"""Credits: grants (admin or operator), the balance, the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.audit import RequestOrigin
from domain.credits import CreditBalance, LedgerEntry
from domain.pagination import Page, PageRequest
from domain.ports import Clock, EventPublisher
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import credits
from domain.use_cases.credits import GrantResult
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Credits:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work
    publisher: EventPublisher
    clock: Clock

    async def grant(
        self,
        actor: Principal | None,
        user_id: uuid.UUID,
        amount: int,
        reason: str,
        idempotency_key: str | None,
        origin: RequestOrigin = RequestOrigin(),
    ) -> GrantResult:
        """`actor` None: the operator (CLI, seeding), who needs no admin token."""
        return await credits.grant(
            actor=actor,
            user_id=user_id,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            uow=self.uow(),
            publisher=self.publisher,
            clock=self.clock,
            origin=origin,
        )

    async def balance(self, user_id: uuid.UUID) -> CreditBalance:
        return await credits.balance_of(user_id=user_id, uow=self.reads())

    async def ledger(self, user_id: uuid.UUID, page: PageRequest) -> Page[LedgerEntry]:
        return await credits.ledger(user_id=user_id, page=page, uow=self.reads())
