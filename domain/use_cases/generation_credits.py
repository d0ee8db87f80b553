"""The credits a generation holds: the reservation that starts it and the release that ends the hold."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain import credits as rules
from domain.credits import LedgerEntry, LedgerKind
from domain.generations import Generation
from domain.repositories import UnitOfWork
from domain.use_cases.credits import post_move


def reservation_for(generation: Generation) -> LedgerEntry | None:
    """The ledger row that reserves a new generation's `reserved_credits` (None when it is free)."""
    if not generation.reserved_credits:
        return None
    move = rules.hold(generation.reserved_credits)
    return LedgerEntry(
        id=uuid.uuid4(),
        user_id=generation.user_id,
        kind=move.kind,
        amount=move.amount,
        idempotency_key=rules.generation_key(generation.id, LedgerKind.RESERVE),
        created_at=generation.created_at,
        generation_id=generation.id,
    )


async def release_hold(uow: UnitOfWork, generation: Generation, at: datetime) -> rules.CreditBalance | None:
    """Release whatever is still reserved for a generation (idempotent by key)."""
    held = await uow.credits.open_reservation(generation.id)
    if held <= 0:
        return None
    return await post_move(
        uow,
        user_id=generation.user_id,
        move=rules.release(held),
        key=rules.generation_key(generation.id, LedgerKind.RELEASE),
        at=at,
        generation_id=generation.id,
    )
