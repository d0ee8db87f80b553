"""adminUsers, adminUser, auditLog, providerHealth (admins only: others get the FORBIDDEN error, as with
adminSettings)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.audit import AuditEntry as DomainAuditEntry
from domain.audit import AuditFilter
from domain.errors import NotFound
from domain.pagination import Page
from graph.admin.provider_types import ProviderHealth
from graph.admin.types import AdminUserConnection, AdminUserDetails, AuditAction, AuditEntryConnection
from graph.common.connections import After, Before, First, Last, page_request
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAdmin


@strawberry.type
class AdminQueries:
    @strawberry.field(
        description=(
            "Accounts, newest first (`first` <= 100), optionally those whose e-mail contains `emailContains` "
            "(without case; `%` and `_` are plain characters). Admins only."
        ),
        permission_classes=[IsAdmin],
    )
    async def admin_users(
        self,
        info: Info,
        email_contains: Annotated[
            str | None, strawberry.argument(description="Only accounts whose e-mail contains this text.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> AdminUserConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page = await services.admin.users(info.context.require_viewer(), email_contains, request)
        return AdminUserConnection.from_page(page, services.cursors)

    @strawberry.field(description="One account, or null. Admins only.", permission_classes=[IsAdmin])
    async def admin_user(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]
    ) -> AdminUserDetails | None:
        try:
            found = await info.context.services.admin.user(info.context.require_viewer(), lookup_id(id, "user"))
        except NotFound:
            return None
        return AdminUserDetails.from_domain(found)

    @strawberry.field(
        description=(
            "The audit log, newest first (`first` <= 100): every admin action, refused ones too. "
            "`targetId`: a user's, model's or preset's id, or a setting's key. Admins only."
        ),
        permission_classes=[IsAdmin],
    )
    async def audit_log(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        action: Annotated[AuditAction | None, strawberry.argument(description="Only entries of this action.")] = None,
        actor_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only entries by this admin (a user id).")
        ] = None,
        target_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Only entries about this user, model or preset (its id) or setting (its key)."
            ),
        ] = None,
    ) -> AuditEntryConnection:
        viewer, services = info.context.require_viewer(), info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page: Page[DomainAuditEntry]
        try:
            actor = lookup_id(actor_id, "user") if actor_id is not None else None
        except NotFound:
            page = Page([], False)  # a malformed id names no admin: nobody's entries
        else:
            flt = AuditFilter(
                action=action, actor_id=actor, target_id=str(target_id) if target_id is not None else None
            )
            page = await services.admin.audit_log(viewer, flt, request)
        return AuditEntryConnection.from_page(page, services.cursors)

    @strawberry.field(
        description=(
            "Each registered provider's circuit (open: its routes are skipped), its recent submits and error "
            "rate, and the generations it runs now, as every worker sees them. Admins only."
        ),
        permission_classes=[IsAdmin],
    )
    async def provider_health(self, info: Info) -> list[ProviderHealth]:
        found = await info.context.services.admin.provider_health(info.context.require_viewer())
        return [ProviderHealth.from_domain(h) for h in found]
