"""Deleting one's account, bound to its ports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain.ports import AccessRevocations, Clock, EventPublisher, JobQueue, PasswordHasher
from domain.use_cases import account_deletion
from domain.use_cases.account_deletion import DeletionUnitOfWork
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    uow: Callable[[], DeletionUnitOfWork]
    hasher: PasswordHasher
    jobs: JobQueue
    #: The CANCELED changes of what was running (watchers' subscriptions end).
    publisher: EventPublisher
    clock: Clock
    #: Every process forgets the account and closes its open connections.
    revocations: AccessRevocations

    async def delete(self, principal: Principal, password: str) -> bool:
        return await account_deletion.delete_account(
            principal=principal,
            password=password,
            uow=self.uow(),
            hasher=self.hasher,
            jobs=self.jobs,
            publisher=self.publisher,
            clock=self.clock,
            revocations=self.revocations,
        )
