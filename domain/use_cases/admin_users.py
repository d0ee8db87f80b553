"""The admins' view of accounts: search by e-mail, one account with its credits, its ledger and its generations."""

from __future__ import annotations

import uuid

from domain.credits import LedgerEntry
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.generations import Generation
from domain.pagination import Page, PageRequest
from domain.repositories import UnitOfWork, UserSummary
from domain.users import MAX_EMAIL_LENGTH, Principal


def require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("Only administrators can look up accounts.")


async def search_users(
    *, actor: Principal, email_contains: str | None, page: PageRequest, uow: UnitOfWork
) -> Page[UserSummary]:
    """Newest accounts first; `email_contains` is matched literally, without case (no wildcards)."""
    require_admin(actor)
    if email_contains is not None and len(email_contains) > MAX_EMAIL_LENGTH:
        raise InvalidInput.single("emailContains", f"must be at most {MAX_EMAIL_LENGTH} characters")
    async with uow:
        return await uow.user_directory.search(email_contains=email_contains or None, page=page)


async def user_summary(*, actor: Principal, user_id: uuid.UUID, uow: UnitOfWork) -> UserSummary:
    require_admin(actor)
    async with uow:
        found = await uow.user_directory.summary(user_id)
    if found is None:
        raise NotFound("user")
    return found


async def user_ledger(*, actor: Principal, user_id: uuid.UUID, page: PageRequest, uow: UnitOfWork) -> Page[LedgerEntry]:
    require_admin(actor)
    async with uow:
        return await uow.credits.ledger_page(user_id, page)


async def user_generations(
    *, actor: Principal, user_id: uuid.UUID, page: PageRequest, uow: UnitOfWork
) -> Page[Generation]:
    require_admin(actor)
    async with uow:
        return await uow.user_directory.generations_of(user_id, page)
