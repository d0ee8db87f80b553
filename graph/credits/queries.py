"""credits, creditLedger."""

from __future__ import annotations

import strawberry

from domain.pagination import PageRequest
from domain.use_cases import credits
from graph.context import Info
from graph.credits.types import CreditBalance, LedgerConnection
from graph.permissions import IsAuthenticated


@strawberry.type
class CreditQueries:
    @strawberry.field(description="The viewer's credits.", permission_classes=[IsAuthenticated])
    async def credits(self, info: Info) -> CreditBalance:
        viewer = info.context.require_viewer()
        return CreditBalance.from_domain(
            await credits.balance_of(user_id=viewer.user_id, uow=info.context.container.uow())
        )

    @strawberry.field(
        description="The viewer's ledger, newest first (`first` <= 100).", permission_classes=[IsAuthenticated]
    )
    async def credit_ledger(self, info: Info, first: int | None = 20, after: str | None = None) -> LedgerConnection:
        viewer, c = info.context.require_viewer(), info.context.container
        page = await credits.ledger(
            user_id=viewer.user_id, page=PageRequest.parse(first, after, cursors=c.cursors), uow=c.uow()
        )
        return LedgerConnection.from_page(page.items, page.has_next, c.cursors)
