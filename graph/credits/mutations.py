"""grantCredits (admin)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.audit import AuditAction
from graph.admin.audited_ids import audited_id
from graph.common.ids import parse_id
from graph.context import Info
from graph.credits.types import CreditBalance, GrantCreditsInput, GrantCreditsResult, GrantCreditsSuccess, LedgerEntry
from graph.permissions import IsAuthenticated
from graph.request_origin import origin_of


@strawberry.type
class CreditMutations:
    @strawberry.mutation(
        description="Credit an account (admin only; idempotent by key).", permission_classes=[IsAuthenticated]
    )
    async def grant_credits(
        self,
        info: Info,
        input: Annotated[
            GrantCreditsInput, strawberry.argument(description="Whose account, how many credits and why.")
        ],
    ) -> GrantCreditsResult:
        user_id = await audited_id(info, AuditAction.GRANT_CREDITS, input.user_id, lambda v: parse_id(v, "userId"))
        result = await info.context.services.credits.grant(
            info.context.require_viewer(),
            user_id,
            input.amount,
            input.reason,
            input.idempotency_key,
            origin_of(info),
        )
        return GrantCreditsSuccess(
            balance=CreditBalance.from_domain(result.balance), entry=LedgerEntry.from_domain(result.entry)
        )
