"""Suspending and reinstating accounts (admins only), audited, through the access gate's suspension.

The writes are the sessions' own (`sessions.apply_suspension`: suspended_at, every session
ended, every refresh token revoked), made in this use case's transaction together with the
audit entry; after the commit the user is announced (AccessRevocations), so every replica
refuses their tokens and closes their open subscriptions at once.

Rules: an admin cannot suspend their own account, nor another admin's (the operator changes
that admin's role first: one admin cannot lock the others out). Both are idempotent: suspending a
suspended account (or reinstating an active one) changes nothing, answers the account as it
is with `changed` false, and is audited as UNCHANGED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.audit import Attempt, AuditAction, AuditOutcome, RequestOrigin
from domain.errors import DomainError, Forbidden, InvalidInput, NotFound
from domain.ports import AccessRevocations, Clock
from domain.repositories import UnitOfWork
from domain.use_cases.audit import record_refusal
from domain.use_cases.sessions import apply_suspension
from domain.users import Principal, User

MAX_REASON_LENGTH = 500


@dataclass(frozen=True, slots=True)
class SuspensionResult:
    user: User
    changed: bool


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("Only administrators can suspend or reinstate accounts.")


async def suspend_user(
    *,
    actor: Principal,
    user_id: uuid.UUID,
    reason: str,
    uow: UnitOfWork,
    clock: Clock,
    revocations: AccessRevocations,
    origin: RequestOrigin = RequestOrigin(),
) -> SuspensionResult:
    _require_admin(actor)
    now = clock.now()
    attempt = Attempt(AuditAction.SUSPEND_USER, actor, now, str(user_id), user_id, origin, {"reason": reason})
    try:
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON_LENGTH:
            raise InvalidInput.single("reason", f"must be 1-{MAX_REASON_LENGTH} characters")
        if user_id == actor.user_id:
            raise Forbidden("You cannot suspend your own account.")
        async with uow:
            target = await uow.users.lock(user_id)  # concurrent suspensions of one account: one after the other
            if target is None or target.deleted_at is not None:
                raise NotFound("user")
            if target.is_admin:
                raise Forbidden("An administrator cannot be suspended: the operator changes their role first.")
            changed = not target.is_suspended
            user = await apply_suspension(uow, user_id, True, now) if changed else target
            outcome = AuditOutcome.APPLIED if changed else AuditOutcome.UNCHANGED
            await uow.audit.add(attempt.entry(outcome))
            await uow.commit()
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    if changed:
        await revocations.announce(user_id)
    return SuspensionResult(user, changed)


async def reinstate_user(
    *,
    actor: Principal,
    user_id: uuid.UUID,
    uow: UnitOfWork,
    clock: Clock,
    revocations: AccessRevocations,
    origin: RequestOrigin = RequestOrigin(),
) -> SuspensionResult:
    """The account may sign in again; sessions the suspension ended stay ended."""
    _require_admin(actor)
    now = clock.now()
    attempt = Attempt(AuditAction.REINSTATE_USER, actor, now, str(user_id), user_id, origin)
    try:
        async with uow:
            target = await uow.users.lock(user_id)
            if target is None or target.deleted_at is not None:
                raise NotFound("user")
            changed = target.is_suspended
            user = await apply_suspension(uow, user_id, False, now) if changed else target
            details = {"suspendedAt": target.suspended_at.isoformat()} if target.suspended_at else {}
            outcome = AuditOutcome.APPLIED if changed else AuditOutcome.UNCHANGED
            await uow.audit.add(attempt.entry(outcome, details))
            await uow.commit()
    except DomainError as exc:
        await record_refusal(uow, attempt, exc)
        raise
    if changed:
        await revocations.announce(user_id)
    return SuspensionResult(user, changed)
