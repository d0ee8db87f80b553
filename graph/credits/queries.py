"""credits, creditLedger."""

from __future__ import annotations

import strawberry

from graph.common.connections import After, Before, First, Last, page_request
from graph.context import Info
from graph.credits.types import CreditBalance, LedgerConnection
from graph.permissions import IsAuthenticated


@strawberry.type
class CreditQueries:
    @strawberry.field(description="The viewer's credits.", permission_classes=[IsAuthenticated])
    async def credits(self, info: Info) -> CreditBalance:
        viewer = info.context.require_viewer()
        return CreditBalance.from_domain(await info.context.services.credits.balance(viewer.user_id))

    @strawberry.field(
        description="The viewer's ledger, newest first (`first` <= 100).", permission_classes=[IsAuthenticated]
    )
    async def credit_ledger(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> LedgerConnection:
        viewer, services = info.context.require_viewer(), info.context.services
        page = await services.credits.ledger(viewer.user_id, page_request(services.cursors, first, after, last, before))
        return LedgerConnection.from_page(page, services.cursors)
