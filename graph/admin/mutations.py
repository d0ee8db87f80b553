"""suspendUser, reinstateUser (admins only)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.audit import AuditAction
from domain.credits import CreditBalance as DomainBalance
from domain.repositories import UserSummary
from domain.use_cases.suspensions import SuspensionResult
from graph.admin.audited_ids import audited_id
from graph.admin.types import AdminUser, ReinstateUserResult, SuspendUserResult, UserSuspensionSuccess
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.request_origin import origin_of


def _success(result: SuspensionResult, balance: DomainBalance) -> UserSuspensionSuccess:
    return UserSuspensionSuccess(user=AdminUser.from_domain(UserSummary(result.user, balance)), changed=result.changed)


@strawberry.type
class AdminMutations:
    @strawberry.mutation(
        description=(
            "Suspend an account (admins only): its access tokens and open subscriptions are refused at once on "
            "every replica, signing in and refreshing answer AccountSuspended until reinstateUser. Not one's own "
            "account, nor another admin's (Forbidden). Idempotent: again, `changed` is false."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def suspend_user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")],
        reason: Annotated[str, strawberry.argument(description="Why, kept in the audit log.")],
    ) -> SuspendUserResult:
        services = info.context.services
        user_id = await audited_id(info, AuditAction.SUSPEND_USER, id, lambda v: lookup_id(v, "user"))
        result = await services.admin.suspend(info.context.require_viewer(), user_id, reason, origin_of(info))
        return _success(result, await services.credits.balance(user_id))

    @strawberry.mutation(
        description=(
            "Reinstate a suspended account (admins only): it may sign in again (sessions the suspension "
            "ended stay ended). Idempotent: for an active account, `changed` is false."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def reinstate_user(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]
    ) -> ReinstateUserResult:
        services = info.context.services
        user_id = await audited_id(info, AuditAction.REINSTATE_USER, id, lambda v: lookup_id(v, "user"))
        result = await services.admin.reinstate(info.context.require_viewer(), user_id, origin_of(info))
        return _success(result, await services.credits.balance(user_id))
