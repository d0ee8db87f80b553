"""grantCredits (admin)."""

from __future__ import annotations

import strawberry

from domain.use_cases import credits
from graph.common.ids import parse_id
from graph.context import Info
from graph.credits.types import CreditBalance, GrantCreditsInput, GrantCreditsResult, GrantCreditsSuccess, LedgerEntry
from graph.permissions import IsAuthenticated


@strawberry.type
class CreditMutations:
    @strawberry.mutation(
        description="Credit an account (admin only; idempotent by key).", permission_classes=[IsAuthenticated]
    )
    async def grant_credits(self, info: Info, input: GrantCreditsInput) -> GrantCreditsResult:
        c = info.context.container

        result = await credits.grant(
            actor=info.context.require_viewer(),
            user_id=parse_id(input.user_id, "userId"),
            amount=input.amount,
            reason=input.reason,
            idempotency_key=input.idempotency_key,
            uow=c.uow(),
            publisher=c.publisher,
            clock=c.clock,
        )
        return GrantCreditsSuccess(
            balance=CreditBalance.from_domain(result.balance), entry=LedgerEntry.from_domain(result.entry)
        )
