"""Changing one's password while signed in: the current one required, every other session ended."""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidCredentials, InvalidInput
from domain.ports import AccessRevocations, Clock, PasswordHasher, TokenIssuer
from domain.repositories import UnitOfWorkFactory
from domain.users import Principal, validate_new_password

WRONG_CURRENT = "The current password is wrong."


async def change_password(
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
    uow: UnitOfWorkFactory,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    clock: Clock,
    revocations: AccessRevocations,
) -> Any:
    """Set a new password; every other session ends (refresh families revoked, access tokens
    refused at once), this one stays. Returns this session's new access token (`token`,
    `expires_in`): the one in hand is refused from now on, as every token issued before.

    InvalidInput for a new password registration would refuse (or the same as the current);
    InvalidCredentials when the current password is wrong, or was changed meanwhile by a
    concurrent call (of two concurrent changes from one current password, one wins).
    """
    validate_new_password(new_password)
    if new_password == current_password:
        raise InvalidInput.single("newPassword", "must differ from the current password")
    async with uow() as tx:
        user = await tx.users.get(principal.user_id)
    # Verified even when the account is gone, so the time taken tells nothing.
    valid = await hasher.verify(user.password_hash if user else None, current_password)
    if user is None or not valid:
        raise InvalidCredentials(WRONG_CURRENT)
    new_hash = await hasher.hash(new_password)  # before the transaction: no row is locked while hashing
    now = clock.now()
    async with uow() as tx:
        locked = await tx.users.lock(user.id)
        if locked is None or locked.password_hash != user.password_hash:
            raise InvalidCredentials(WRONG_CURRENT)
        await tx.users.set_password_hash(user.id, new_hash)
        version = await tx.users.end_sessions(user.id, now)
        await tx.refresh_tokens.revoke_all(user.id, now, keep_family=principal.session_id)
        await tx.commit()
    await revocations.announce(user.id)
    return tokens.issue_access(
        user.id, locked.role, session_id=principal.session_id, session_version=version or locked.session_version + 1
    )
