"""Administration: looking up accounts, suspending and reinstating them, reading the audit log, provider
health and the provider routes tried for generations (admins only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.audit import AuditAction, AuditEntry, AuditFilter, RequestOrigin
from domain.credits import LedgerEntry
from domain.errors import DomainError
from domain.generations import Generation
from domain.pagination import Page, PageRequest
from domain.ports import AccessRevocations, CircuitBreaker, Clock
from domain.provider_attempts import ProviderAttempt
from domain.provider_health import NoCircuits, ProviderHealth
from domain.repositories import UnitOfWorkFactory, UserSummary
from domain.use_cases import admin_users, audit, provider_health, suspensions
from domain.use_cases.suspensions import SuspensionResult
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Administration:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work
    clock: Clock
    revocations: AccessRevocations
    #: Provider circuits and the registered providers' names (providerHealth); None: no circuits.
    breaker: CircuitBreaker | None = None
    providers: tuple[str, ...] = ()

    async def users(self, actor: Principal, email_contains: str | None, page: PageRequest) -> Page[UserSummary]:
        return await admin_users.search_users(actor=actor, email_contains=email_contains, page=page, uow=self.reads())

    async def user(self, actor: Principal, user_id: uuid.UUID) -> UserSummary:
        return await admin_users.user_summary(actor=actor, user_id=user_id, uow=self.reads())

    async def ledger(self, actor: Principal, user_id: uuid.UUID, page: PageRequest) -> Page[LedgerEntry]:
        return await admin_users.user_ledger(actor=actor, user_id=user_id, page=page, uow=self.reads())

    async def generations(self, actor: Principal, user_id: uuid.UUID, page: PageRequest) -> Page[Generation]:
        return await admin_users.user_generations(actor=actor, user_id=user_id, page=page, uow=self.reads())

    async def provider_health(self, actor: Principal) -> list[ProviderHealth]:
        breaker = self.breaker or NoCircuits()
        return await provider_health.providers_for_admin(
            actor=actor, breaker=breaker, providers=self.providers, uow=self.reads()
        )

    async def provider_attempts(
        self, actor: Principal, generation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ProviderAttempt]]:
        return await provider_health.attempts_for_admin(actor=actor, generation_ids=generation_ids, uow=self.reads())

    async def audit_log(self, actor: Principal, flt: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        return await audit.audit_page(actor=actor, flt=flt, page=page, uow=self.reads())

    async def suspend(
        self, actor: Principal, user_id: uuid.UUID, reason: str, origin: RequestOrigin
    ) -> SuspensionResult:
        return await suspensions.suspend_user(
            actor=actor,
            user_id=user_id,
            reason=reason,
            uow=self.uow(),
            clock=self.clock,
            revocations=self.revocations,
            origin=origin,
        )

    async def reinstate(self, actor: Principal, user_id: uuid.UUID, origin: RequestOrigin) -> SuspensionResult:
        return await suspensions.reinstate_user(
            actor=actor, user_id=user_id, uow=self.uow(), clock=self.clock, revocations=self.revocations, origin=origin
        )

    async def refused_before(
        self, actor: Principal, action: AuditAction, target: str, error: DomainError, origin: RequestOrigin
    ) -> None:
        """Record an admin's call the transport refused before its use case (a malformed id)."""
        await audit.record_malformed(
            actor=actor, action=action, target=target, error=error, uow=self.uow(), clock=self.clock, origin=origin
        )
