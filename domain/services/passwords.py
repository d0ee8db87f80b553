"""Passwords: change while signed in, and reset by e-mail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.emails import EmailMessage
from domain.ports import AccessRevocations, Clock, JobQueue, PasswordHasher, ResetTokens, TokenIssuer
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import password_reset, passwords
from domain.use_cases.password_reset import ResetPolicy
from domain.users import Principal, User


@dataclass(frozen=True, slots=True)
class Passwords:
    uow: UnitOfWorkFactory
    hasher: PasswordHasher
    tokens: TokenIssuer
    clock: Clock
    revocations: AccessRevocations
    jobs: JobQueue
    reset_policy: ResetPolicy
    reset_tokens: ResetTokens

    async def change(self, principal: Principal, current_password: str, new_password: str) -> Any:
        """This session's new access token (`token`, `expires_in`); every other session ends."""
        return await passwords.change_password(
            principal,
            current_password=current_password,
            new_password=new_password,
            uow=self.uow,
            hasher=self.hasher,
            tokens=self.tokens,
            clock=self.clock,
            revocations=self.revocations,
        )

    async def request_reset(self, email: str) -> None:
        await password_reset.request_password_reset(
            email, uow=self.uow(), jobs=self.jobs, clock=self.clock, policy=self.reset_policy, tokens=self.reset_tokens
        )

    async def reset_email(self, reset_id: uuid.UUID) -> EmailMessage | None:
        """The e-mail a reset request's task sends, or None (nothing to send)."""
        return await password_reset.reset_email(
            reset_id, uow=self.uow(), clock=self.clock, policy=self.reset_policy, tokens=self.reset_tokens
        )

    async def reset(self, token: str, new_password: str) -> User:
        return await password_reset.reset_password(
            token, new_password, uow=self.uow(), hasher=self.hasher, clock=self.clock, revocations=self.revocations
        )
