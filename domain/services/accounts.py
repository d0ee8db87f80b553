"""Accounts: sign-up, sign-in, refresh, the access gate and ending sessions, operator set-up."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from domain.catalogue import AiModel
from domain.errors import InvalidState
from domain.ports import (
    AccessRevocations,
    AccessVerifier,
    CatalogueReader,
    Clock,
    EventPublisher,
    PasswordHasher,
    RateLimiter,
    TokenIssuer,
)
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import auth, seeding, sessions
from domain.use_cases.access_gate import AccessGate
from domain.use_cases.rate_limits import RateRule
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
    gate: AccessGate
    revocations: AccessRevocations
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
            revocations=self.revocations,
        )

    def verify_access(self, token: str) -> tuple[Principal, datetime]:
        """The principal of an access token and its expiry; Unauthenticated on any defect."""
        return self.verifier.verify_access(token)

    async def refusal(self, principal: Principal) -> str | None:
        """Why a verified token is refused now (account gone or suspended, session ended), or None."""
        return await self.gate.refusal(principal, uow=self.reads())

    def watch(self, principal: Principal, check: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run `check` (an open connection's) whenever the principal's access may have changed."""
        return self.gate.watch(principal.user_id, check)

    async def end_all_sessions(self, user_id: uuid.UUID, *, keep_session: uuid.UUID | None = None) -> int:
        """Sign out everywhere (but `keep_session`): refresh families revoked, access tokens refused at once."""
        return await sessions.end_all_sessions(
            user_id, uow=self.uow(), clock=self.clock, revocations=self.revocations, keep_session=keep_session
        )

    async def end_session(self, principal: Principal) -> None:
        """Sign out: the principal's session (refresh family) ends, its access tokens are refused at once."""
        if principal.session_id is None:
            raise InvalidState(
                "This access token names no session (it was not issued by a sign-in): use logoutEverywhere."
            )
        await sessions.end_session(
            principal.user_id, principal.session_id, uow=self.uow(), clock=self.clock, revocations=self.revocations
        )

    async def suspend(self, user_id: uuid.UUID) -> User:
        """Every session ends at once, on every process; signing in is refused (AccountSuspended). NotFound."""
        return await sessions.set_suspended(
            user_id, True, uow=self.uow(), clock=self.clock, revocations=self.revocations
        )

    async def reinstate(self, user_id: uuid.UUID) -> User:
        """The user may sign in again (sessions ended by the suspension stay ended). NotFound."""
        return await sessions.set_suspended(
            user_id, False, uow=self.uow(), clock=self.clock, revocations=self.revocations
        )

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
