"""Creating, listing and revoking API keys: a user's own, or (administrators) any user's, audited.

An administrator acting on another user's keys is recorded in the audit log like every
admin action (refusals too). Someone else's key id answers NotFound to a non-admin, exactly
as a missing one does. Creation holds the owner's row locked while it counts the live keys,
so concurrent creates cannot pass the cap together. A revocation is announced after its
commit (AccessRevocations, with the key's id): every replica forgets the key and closes the
connections it authenticated.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.api_key_ports import ApiKeyUnitOfWork
from domain.api_keys import MAX_KEYS_PER_USER, ApiKey, mint, validate_new_key
from domain.audit import Attempt, AuditAction, AuditOutcome, RequestOrigin
from domain.errors import DomainError, Forbidden, NotFound, QuotaExceeded
from domain.ports import AccessRevocations, Clock
from domain.use_cases.audit import record_refusal
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    #: The whole key: shown once, never stored.
    token: str


@dataclass(frozen=True, slots=True)
class RevokedKey:
    key: ApiKey
    #: False when it was revoked already (nothing changed).
    changed: bool


def _owner(actor: Principal, user_id: uuid.UUID | None) -> uuid.UUID:
    owner = user_id or actor.user_id
    if owner != actor.user_id and not actor.is_admin:
        raise Forbidden("Only administrators can manage another user's API keys.")
    return owner


def _attempt(
    action: AuditAction,
    actor: Principal,
    owner: uuid.UUID | None,
    at: datetime,
    origin: RequestOrigin,
    target: str,
    details: Mapping[str, object] | None = None,
) -> Attempt | None:
    """An audit attempt when an administrator acts on another user's keys (or a missing key), else None."""
    if owner == actor.user_id or not actor.is_admin:
        return None
    return Attempt(action, actor, at, target, owner, origin, dict(details or {}))


async def create_key(
    *,
    actor: Principal,
    user_id: uuid.UUID | None,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    uow: ApiKeyUnitOfWork,
    clock: Clock,
    origin: RequestOrigin = RequestOrigin(),
) -> CreatedKey:
    owner_id = _owner(actor, user_id)
    now = clock.now()
    details = {"name": name, "scopes": ",".join(scopes)}
    attempt = _attempt(AuditAction.CREATE_API_KEY, actor, owner_id, now, origin, str(owner_id), details)
    try:
        async with uow:
            owner = await uow.users.lock(owner_id)  # concurrent creates for one owner: one after the other
            if owner is None or owner.deleted_at is not None:
                raise NotFound("user")
            clean, parsed = validate_new_key(
                name=name, scopes=scopes, expires_at=expires_at, owner_is_admin=owner.is_admin, now=now
            )
            if await uow.api_keys.count_live(owner_id, now) >= MAX_KEYS_PER_USER:
                raise QuotaExceeded(
                    MAX_KEYS_PER_USER, f"An account holds at most {MAX_KEYS_PER_USER} live API keys: revoke one first."
                )
            new = mint(user_id=owner_id, name=clean, scopes=parsed, created_at=now, expires_at=expires_at)
            await uow.api_keys.add(new.key, new.secret_hash)
            if attempt is not None:
                await uow.audit.add(attempt.entry(AuditOutcome.APPLIED, {"keyId": str(new.key.id)}))
            await uow.commit()
    except DomainError as exc:
        if attempt is not None:
            await record_refusal(uow, attempt, exc)
        raise
    return CreatedKey(new.key, new.token)


async def list_keys(*, actor: Principal, user_id: uuid.UUID | None, uow: ApiKeyUnitOfWork) -> list[ApiKey]:
    owner_id = _owner(actor, user_id)
    async with uow:
        return await uow.api_keys.of_user(owner_id)


async def get_key(*, actor: Principal, key_id: uuid.UUID, uow: ApiKeyUnitOfWork) -> ApiKey:
    """One key as `apiKeys` shows it: the actor's own, any to an administrator; NotFound otherwise."""
    async with uow:
        key = await uow.api_keys.get(key_id)
    if key is None or (key.user_id != actor.user_id and not actor.is_admin):
        raise NotFound("API key")
    return key


async def revoke_key(
    *,
    actor: Principal,
    key_id: uuid.UUID,
    uow: ApiKeyUnitOfWork,
    clock: Clock,
    revocations: AccessRevocations,
    origin: RequestOrigin = RequestOrigin(),
) -> RevokedKey:
    """Revoke the key (idempotent: a revoked key answers as it is, `changed` false). NotFound for a
    missing key and for someone else's (to anyone but an administrator)."""
    now = clock.now()
    attempt: Attempt | None = None
    try:
        async with uow:
            key = await uow.api_keys.get(key_id)
            if key is None or (key.user_id != actor.user_id and not actor.is_admin):
                attempt = _attempt(AuditAction.REVOKE_API_KEY, actor, None, now, origin, str(key_id))
                raise NotFound("apiKey")
            attempt = _attempt(AuditAction.REVOKE_API_KEY, actor, key.user_id, now, origin, str(key_id))
            revoked = await uow.api_keys.revoke(key_id, now)
            outcome = AuditOutcome.APPLIED if revoked is not None else AuditOutcome.UNCHANGED
            if attempt is not None:
                await uow.audit.add(attempt.entry(outcome))
            await uow.commit()
    except DomainError as exc:
        if attempt is not None:
            await record_refusal(uow, attempt, exc)
        raise
    if revoked is None:
        return RevokedKey(key, changed=False)
    await revocations.announce(key.user_id, api_key=key_id)
    return RevokedKey(revoked, changed=True)
