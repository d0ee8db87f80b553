"""Accounts: sign-up, sign-in, refresh, the check that a token's account exists, operator set-up."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.catalogue import AiModel
from domain.ports import (
    AccessVerifier,
    CatalogueReader,
    Clock,
    EventPublisher,
    PasswordHasher,
    RateLimiter,
    TokenIssuer,
)
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import auth, seeding
from domain.use_cases.rate_limits import RateRule
from domain.use_cases.viewers import KnownAccounts
from domain.users import Principal, User


@dataclass(frozen=True, slots=True)
class Accounts:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work
    hasher: PasswordHasher
    tokens: TokenIssuer
    verifier: AccessVerifier
    clock: Clock
    limiter: RateLimiter
    refresh_family: RateRule
    known: KnownAccounts
    catalogue: CatalogueReader
    publisher: EventPublisher

    async def register(self, email: str, password: str) -> auth.Session:
        return await auth.register(
            email=email, password=password, uow=self.uow(), hasher=self.hasher, tokens=self.tokens, clock=self.clock
        )

    async def login(self, email: str, password: str) -> auth.Session:
        return await auth.login(
            email=email, password=password, uow=self.uow(), hasher=self.hasher, tokens=self.tokens, clock=self.clock
        )

    async def refresh(self, refresh_token: str) -> auth.Session:
        return await auth.refresh(
            refresh_token=refresh_token,
            uow=self.uow(),
            tokens=self.tokens,
            clock=self.clock,
            limiter=self.limiter,
            family_rate=self.refresh_family,
        )

    def verify_access(self, token: str) -> tuple[Principal, datetime]:
        """The principal of an access token and its expiry; Unauthenticated on any defect."""
        return self.verifier.verify_access(token)

    async def exists(self, user_id: uuid.UUID) -> bool:
        """Whether a verified token's account still exists (remembered for a while: KnownAccounts)."""
        return await self.known.exists(user_id, uow=self.reads(), now=time.monotonic())

    async def find(self, email: str) -> User | None:
        return await auth.find_user(email=email, uow=self.reads())

    async def ensure_admin(self, email: str, password: str) -> tuple[User, bool]:
        return await auth.ensure_admin(
            email=email, password=password, uow=self.uow(), hasher=self.hasher, clock=self.clock
        )

    async def seed_demo(self, email: str, password: str, credits_amount: int) -> tuple[User, list[AiModel]]:
        return await seeding.seed_demo(
            email=email,
            password=password,
            credits_amount=credits_amount,
            uow=self.uow,
            hasher=self.hasher,
            clock=self.clock,
            catalogue_cache=self.catalogue,
            publisher=self.publisher,
        )
