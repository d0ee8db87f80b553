"""GraphQL types of the credits area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain import credits as dc
from domain.cursors import CursorCodec
from domain.pagination import Page
from graph.common.connections import cursor_of, page_info
from graph.common.types import Forbidden, InvalidInput, NotFound, PageInfo

strawberry.enum(dc.LedgerKind, name="LedgerKind", description="What a ledger entry did.")
LedgerKind = dc.LedgerKind


@strawberry.type(description="Credits of the viewer. `available` = `balance` - `reserved`, never negative.")
class CreditBalance:
    balance: int = strawberry.field(description="Posted credits.")
    reserved: int = strawberry.field(description="Held by running generations.")
    available: int = strawberry.field(description="What a new generation may use.")

    @classmethod
    def from_domain(cls, value: dc.CreditBalance) -> CreditBalance:
        return cls(balance=value.balance, reserved=value.reserved, available=value.available)


@strawberry.type(description="One immutable move of credits.")
class LedgerEntry:
    id: strawberry.ID
    kind: LedgerKind
    amount: int = strawberry.field(description="Signed: + adds to balance/reservation, - takes from it.")
    generation_id: strawberry.ID | None
    reason: str | None
    created_at: datetime

    @classmethod
    def from_domain(cls, entry: dc.LedgerEntry) -> LedgerEntry:
        return cls(
            id=strawberry.ID(str(entry.id)),
            kind=entry.kind,
            amount=entry.amount,
            generation_id=strawberry.ID(str(entry.generation_id)) if entry.generation_id else None,
            reason=entry.reason,
            created_at=entry.created_at,
        )


@strawberry.type
class LedgerEdge:
    node: LedgerEntry
    cursor: str


@strawberry.type(description="A page of ledger entries, newest first.")
class LedgerConnection:
    edges: list[LedgerEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[dc.LedgerEntry], cursors: CursorCodec) -> LedgerConnection:
        edges = [LedgerEdge(node=LedgerEntry.from_domain(e), cursor=cursor_of(e, cursors)) for e in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


@strawberry.input(description="Credit a user's account (admin only). Replays with the same key change nothing.")
class GrantCreditsInput:
    user_id: strawberry.ID = strawberry.field(description="Whose account to credit.")
    amount: int = strawberry.field(description="Whole credits to add, at least 1.")
    reason: str = strawberry.field(description="Why, kept in the ledger and the audit log.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="A client-chosen key: a replay with it returns the first result."
    )


@strawberry.type
class GrantCreditsSuccess:
    balance: CreditBalance
    entry: LedgerEntry


GrantCreditsResult = Annotated[
    GrantCreditsSuccess | NotFound | Forbidden | InvalidInput, strawberry.union("GrantCreditsResult")
]
