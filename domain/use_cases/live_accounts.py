"""A write for a user checks, under a lock, that the account is still live (not a deleted account's tombstone)."""

from __future__ import annotations

import uuid
from typing import Protocol

from domain.errors import Unauthenticated
from domain.repositories import UserRepository


class WithUsers(Protocol):
    """Any unit of work: only its users are needed."""

    @property
    def users(self) -> UserRepository: ...


async def hold_live(uow: WithUsers, user_id: uuid.UUID) -> None:
    """Hold the user's row (shared) until the transaction ends; Unauthenticated when the account is deleted.

    Call it first in a transaction that inserts a row naming the user, or right after that transaction
    locks the user's row for update anyway (a shared hold before it would deadlock two such
    transactions: an upload's quota, an export request's owner lock). The hold conflicts with
    deleteAccount's lock on the row: a write that holds it first is waited for and deleted with the
    account; one that comes later waits for the deletion to commit, then finds the tombstone.
    """
    user = await uow.users.hold(user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated("The account was deleted.")
