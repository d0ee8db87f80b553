"""GraphQL types of the admin area: accounts with their credits, the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

import strawberry

from domain import audit as da
from domain.cursors import CursorCodec
from domain.pagination import Page
from domain.repositories import UserSummary
from graph.auth.types import Role
from graph.common.connections import After, Before, First, Last, cursor_of, page_info, page_request
from graph.common.types import Forbidden, InvalidInput, NotFound, PageInfo
from graph.context import Info
from graph.credits.types import CreditBalance, LedgerConnection
from graph.generations.types import GenerationConnection
from graph.scalars import JSON

strawberry.enum(da.AuditAction, name="AuditAction", description="What an admin (or the operator) did.")
AuditAction = da.AuditAction
strawberry.enum(da.AuditOutcome, name="AuditOutcome", description="How an audited action ended.")
AuditOutcome = da.AuditOutcome


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(description="An account as administrators see it.")
class AdminUser:
    id: strawberry.ID
    email: str
    role: Role
    created_at: datetime
    suspended_at: datetime | None = strawberry.field(
        description="Since when the account is suspended (its tokens refused, signing in refused); null when active."
    )
    deleted_at: datetime | None = strawberry.field(description="Set when the account was deleted (a tombstone).")
    credits: CreditBalance

    @classmethod
    def from_domain(cls, found: UserSummary) -> Self:
        u = found.user
        return cls(
            id=strawberry.ID(str(u.id)),
            email=u.email,
            role=u.role,
            created_at=u.created_at,
            suspended_at=u.suspended_at,
            deleted_at=u.deleted_at,
            credits=CreditBalance.from_domain(found.balance),
        )


@strawberry.type(description="One account with its ledger and its own generations (admins only).")
class AdminUserDetails(AdminUser):
    @strawberry.field(description="The account's ledger, newest first (`first` <= 100).")
    async def ledger(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> LedgerConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page = await services.admin.ledger(info.context.require_viewer(), uuid.UUID(self.id), request)
        return LedgerConnection.from_page(page, services.cursors)

    @strawberry.field(description="Generations the account started, newest first (`first` <= 100).")
    async def generations(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> GenerationConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page = await services.admin.generations(info.context.require_viewer(), uuid.UUID(self.id), request)
        return GenerationConnection.from_page(page, services.cursors)


@strawberry.type
class AdminUserEdge:
    node: AdminUser
    cursor: str


@strawberry.type(description="A page of accounts, newest first.")
class AdminUserConnection:
    edges: list[AdminUserEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[UserSummary], cursors: CursorCodec) -> AdminUserConnection:
        edges = [AdminUserEdge(node=AdminUser.from_domain(s), cursor=cursor_of(s.user, cursors)) for s in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


@strawberry.type(description="One admin action, as it was recorded (entries are never changed).")
class AuditEntry:
    id: strawberry.ID
    created_at: datetime
    actor: str = strawberry.field(description='"admin" (then `actorId` is set) or "cli" (the operator).')
    actor_id: strawberry.ID | None
    action: AuditAction
    outcome: AuditOutcome
    target_id: strawberry.ID | None = strawberry.field(
        description="What was acted on: a user's, model's or preset's id, or a setting's key."
    )
    target_user_id: strawberry.ID | None
    error_code: str | None = strawberry.field(description="Why it was refused (outcome REFUSED).")
    details: JSON = strawberry.field(description="What was asked and what came of it; never secrets.")
    client_address: str | None
    request_id: str | None

    @classmethod
    def from_domain(cls, e: da.AuditEntry) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(e.id)),
            created_at=e.created_at,
            actor=e.actor,
            actor_id=_id(e.actor_id),
            action=e.action,
            outcome=e.outcome,
            target_id=strawberry.ID(e.target_id) if e.target_id is not None else None,
            target_user_id=_id(e.target_user_id),
            error_code=e.error_code,
            details=JSON(e.details),
            client_address=e.client_address,
            request_id=e.request_id,
        )


@strawberry.type
class AuditEntryEdge:
    node: AuditEntry
    cursor: str


@strawberry.type(description="A page of the audit log, newest first.")
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page[da.AuditEntry], cursors: CursorCodec) -> AuditEntryConnection:
        edges = [AuditEntryEdge(node=AuditEntry.from_domain(e), cursor=cursor_of(e, cursors)) for e in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


@strawberry.type(description="The account after suspendUser or reinstateUser.")
class UserSuspensionSuccess:
    user: AdminUser
    changed: bool = strawberry.field(
        description="False when it was already in that state (nothing was changed; the call is still audited)."
    )


SuspendUserResult = Annotated[
    UserSuspensionSuccess | NotFound | Forbidden | InvalidInput, strawberry.union("SuspendUserResult")
]
ReinstateUserResult = Annotated[UserSuspensionSuccess | NotFound | Forbidden, strawberry.union("ReinstateUserResult")]
