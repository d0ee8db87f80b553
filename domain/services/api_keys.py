"""API keys: management (create, list, revoke) and per-request verification, bound to their ports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.api_key_ports import ApiKeyUnitOfWorkFactory
from domain.api_keys import ApiKey
from domain.audit import RequestOrigin
from domain.ports import AccessRevocations, Clock
from domain.use_cases import api_keys
from domain.use_cases.api_key_gate import ApiKeyGate, BeforeRead
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class ApiKeys:
    uow: ApiKeyUnitOfWorkFactory
    reads: ApiKeyUnitOfWorkFactory  # read-only units of work
    clock: Clock
    revocations: AccessRevocations
    gate: ApiKeyGate

    async def create(
        self,
        actor: Principal,
        *,
        user_id: uuid.UUID | None,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        origin: RequestOrigin,
    ) -> api_keys.CreatedKey:
        return await api_keys.create_key(
            actor=actor,
            user_id=user_id,
            name=name,
            scopes=scopes,
            expires_at=expires_at,
            uow=self.uow(),
            clock=self.clock,
            origin=origin,
        )

    async def of_user(self, actor: Principal, user_id: uuid.UUID | None) -> list[ApiKey]:
        return await api_keys.list_keys(actor=actor, user_id=user_id, uow=self.reads())

    async def get(self, actor: Principal, key_id: uuid.UUID) -> ApiKey:
        return await api_keys.get_key(actor=actor, key_id=key_id, uow=self.reads())

    async def revoke(self, actor: Principal, key_id: uuid.UUID, origin: RequestOrigin) -> api_keys.RevokedKey:
        return await api_keys.revoke_key(
            actor=actor, key_id=key_id, uow=self.uow(), clock=self.clock, revocations=self.revocations, origin=origin
        )

    async def verify(self, token: str, before_read: BeforeRead | None = None) -> tuple[Principal, datetime | None]:
        """The key's principal and expiry (Unauthenticated for any defect); the owner's account is
        not checked here (`refusal` does, with the access gate)."""
        return await self.gate.verify(token, uow=self.reads(), before_read=before_read)

    async def refusal(self, token: str) -> str | None:
        """Why the key is refused now (revoked, expired, the account suspended or gone), or None."""
        return await self.gate.refusal(token, uow=self.reads())
