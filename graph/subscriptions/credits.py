"""creditsChanged."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import strawberry

from graph.context import Info
from graph.credits.types import CreditBalance
from graph.permissions import IsAuthenticated
from graph.subscriptions.session import deliver


@strawberry.type
class CreditSubscriptions:
    @strawberry.subscription(
        description="The viewer's balance after every ledger move.", permission_classes=[IsAuthenticated]
    )
    async def credits_changed(self, info: Info) -> AsyncGenerator[CreditBalance, None]:
        ctx = info.context
        balances = ctx.services.watching.credits(ctx.require_viewer(), ctx.token_expires_at)
        async with contextlib.aclosing(deliver(ctx, balances)) as stream:
            async for balance in stream:
                yield CreditBalance.from_domain(balance)
