"""Writing refused attempts to the audit log, and reading the log (admins only).

Applied actions are written by their own use cases, inside the change's transaction
(`uow.audit.add(attempt.entry(...))` before `commit()`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from domain.audit import Attempt, AuditAction, AuditEntry, AuditFilter, AuditOutcome, RequestOrigin
from domain.errors import DomainError, Forbidden, ServiceUnavailable
from domain.pagination import Page, PageRequest
from domain.ports import Clock
from domain.repositories import UnitOfWork
from domain.users import Principal

log = logging.getLogger("genhub.audit")


def moment(clock: Clock | None) -> datetime:
    """The entry's time: the clock's, or the wall clock's for callers that bring none (operator tools)."""
    return clock.now() if clock is not None else datetime.now(UTC)


async def record_refusal(uow: UnitOfWork, attempt: Attempt, error: DomainError) -> None:
    """The refused attempt, in a transaction of its own (the change's rolled back).

    Not for outages (the database is what failed, and nothing was refused); a failure to
    write it is logged, never raised over the refusal the caller is owed.
    """
    if isinstance(error, ServiceUnavailable):
        return
    try:
        async with uow:
            await uow.audit.add(attempt.entry(AuditOutcome.REFUSED, error_code=error.code))
            await uow.commit()
    except Exception:
        log.exception("could not record a refused %s in the audit log", attempt.action.value)


async def record_malformed(
    *,
    actor: Principal,
    action: AuditAction,
    target: str,
    error: DomainError,
    uow: UnitOfWork,
    clock: Clock,
    origin: RequestOrigin,
) -> None:
    """An admin's call the transport refused before its use case ran (a malformed id): recorded as
    refused, as the use case would have. Nothing for a caller who is not an admin."""
    if actor.is_admin:
        await record_refusal(uow, Attempt(action, actor, clock.now(), target, None, origin), error)


async def audit_page(*, actor: Principal, flt: AuditFilter, page: PageRequest, uow: UnitOfWork) -> Page[AuditEntry]:
    if not actor.is_admin:
        raise Forbidden("Only administrators can read the audit log.")
    async with uow:
        return await uow.audit.page(flt, page)
