"""Ending sessions and suspending accounts: the changes the access gate enforces at once.

Each commits first, then announces the user (AccessRevocations) so that every process
forgets what it remembered of the user's AccessState and closes the connections it no
longer admits. The announcement is best effort: a process that misses it re-reads the
state within the gate's TTL (domain/use_cases/access_gate.py; docs/security.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.errors import NotFound
from domain.ports import AccessRevocations, Clock
from domain.repositories import UnitOfWork
from domain.users import User


async def end_all_sessions(
    user_id: uuid.UUID,
    *,
    uow: UnitOfWork,
    clock: Clock,
    revocations: AccessRevocations,
    keep_session: uuid.UUID | None = None,
) -> int:
    """Every refresh family of the user is revoked (but `keep_session`'s) and every access token
    issued until now refused. Returns the new session version (a token issued with it is admitted)."""
    now = clock.now()
    async with uow:
        version = await uow.users.end_sessions(user_id, now)
        if version is None:
            raise NotFound("user")
        await uow.refresh_tokens.revoke_all(user_id, now, keep_family=keep_session)
        await uow.commit()
    await revocations.announce(user_id)
    return version


async def end_session(
    user_id: uuid.UUID, session_id: uuid.UUID, *, uow: UnitOfWork, clock: Clock, revocations: AccessRevocations
) -> None:
    """One sign-in ends: its refresh family is revoked, and its access tokens are refused."""
    async with uow:
        await uow.users.lock(user_id)  # waits for a rotation of the family in flight, then revokes its token
        await uow.refresh_tokens.revoke_family_of(user_id, session_id, clock.now())
        await uow.commit()
    await revocations.announce(user_id)


async def set_suspended(
    user_id: uuid.UUID, suspended: bool, *, uow: UnitOfWork, clock: Clock, revocations: AccessRevocations
) -> User:
    """Suspend (every session ends; signing in and refreshing are refused with AccountSuspended until
    reinstated) or reinstate (the user may sign in again; ended sessions stay ended). Idempotent."""
    now = clock.now()
    async with uow:
        user = await apply_suspension(uow, user_id, suspended, now)
        await uow.commit()
    await revocations.announce(user_id)
    return user


async def apply_suspension(uow: UnitOfWork, user_id: uuid.UUID, suspended: bool, now: datetime) -> User:
    """`set_suspended`'s writes, inside the caller's open unit of work (which commits, then announces
    the user); the user as it is after them. NotFound."""
    if not await uow.users.set_suspended(user_id, now if suspended else None):
        raise NotFound("user")
    if suspended:
        await uow.users.end_sessions(user_id, now)
        await uow.refresh_tokens.revoke_all(user_id, now)
    user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("user")
    return user
