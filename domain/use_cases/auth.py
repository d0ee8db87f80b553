"""Register, log in and rotate refresh tokens."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import AccountSuspended, EmailTaken, InvalidCredentials
from domain.ports import AccessRevocations, Clock, PasswordHasher, RateLimiter, TokenIssuer
from domain.repositories import RefreshTokenRecord, UnitOfWork
from domain.use_cases.rate_limits import RateRule, enforce
from domain.users import Role, User, normalize_email, refresh_token_hash, validate_registration


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int
    #: The refresh-token family this sign-in rotates within (the access token's `sid`).
    session_id: uuid.UUID | None = None


async def _open_session(
    uow: UnitOfWork, user: User, *, tokens: TokenIssuer, now: datetime, family_id: uuid.UUID | None = None
) -> Session:
    refresh, refresh_hash = tokens.new_refresh_token()
    family_id = family_id or uuid.uuid4()
    await uow.refresh_tokens.add(
        RefreshTokenRecord(
            id=uuid.uuid4(),
            user_id=user.id,
            family_id=family_id,
            token_hash=refresh_hash,
            expires_at=now + timedelta(seconds=tokens.refresh_ttl),
            created_at=now,
        )
    )
    access = tokens.issue_access(user.id, user.role, session_id=family_id, session_version=user.session_version)
    return Session(
        user=user,
        access_token=access.token,
        refresh_token=refresh,
        expires_in=access.expires_in,
        session_id=family_id,
    )


async def register(
    *,
    email: str,
    password: str,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    clock: Clock,
    role: Role = Role.USER,
) -> Session:
    email = normalize_email(email)
    validate_registration(email, password)
    now = clock.now()
    user = User(id=uuid.uuid4(), email=email, role=role, created_at=now, password_hash=await hasher.hash(password))
    async with uow:
        if await uow.users.get_by_email(email) is not None:
            raise EmailTaken()
        await uow.users.add(user)
        await uow.credits.ensure_account(user.id)
        session = await _open_session(uow, user, tokens=tokens, now=now)
        await uow.commit()
    return session


async def login(
    *, email: str, password: str, uow: UnitOfWork, hasher: PasswordHasher, tokens: TokenIssuer, clock: Clock
) -> Session:
    email = normalize_email(email)
    async with uow:
        user = await uow.users.get_by_email(email)
        # Verify even for an unknown e-mail so timing does not reveal which part was wrong.
        valid = await hasher.verify(user.password_hash if user else None, password)
        if user is None or not valid:
            raise InvalidCredentials()
        # Held while the family is added: a revocation (reset, change, sign-out everywhere) waits for us
        # and revokes it. One that committed since the read above changed the hash we verified: refused.
        held = await uow.users.hold(user.id)
        if held is None or held.password_hash != user.password_hash:
            raise InvalidCredentials()
        if held.is_suspended:  # told only to whoever knows the password
            raise AccountSuspended()
        session = await _open_session(uow, held, tokens=tokens, now=clock.now())
        await uow.commit()
    return session


async def refresh(
    *,
    refresh_token: str,
    uow: UnitOfWork,
    tokens: TokenIssuer,
    clock: Clock,
    limiter: RateLimiter | None = None,
    family_rate: RateRule | None = None,
    revocations: AccessRevocations | None = None,
) -> Session:
    """Rotate: the old token is spent; presenting a spent token revokes its whole family (and,
    announced through `revocations`, the access tokens issued for it stop working at once).

    `family_rate` limits the rotations of one family (one sign-in), from any address; a
    refused call spends nothing.
    """
    now = clock.now()
    token_hash = refresh_token_hash(refresh_token)
    async with uow:
        record = await uow.refresh_tokens.get_by_hash(token_hash)
        if record is None or record.revoked_at is not None or record.expires_at <= now:
            raise InvalidCredentials("The refresh token is invalid or expired.")
        await enforce(limiter, bucket=f"refresh:family:{record.family_id}", rule=family_rate)
        # Held until commit: a revocation of the user's tokens waits for this rotation and then revokes
        # the token it adds. One that committed while we waited is seen by the re-read below.
        user = await uow.users.hold(record.user_id)
        record = await uow.refresh_tokens.get_by_hash(token_hash)
        if user is None or record is None or record.revoked_at is not None:
            raise InvalidCredentials("The refresh token is invalid or expired.")
        if record.used_at is None and await uow.refresh_tokens.mark_used(record.id, now):
            if user.is_suspended:  # nothing committed: the token is not spent
                raise AccountSuspended()
            session = await _open_session(uow, user, tokens=tokens, now=now, family_id=record.family_id)
            await uow.commit()
            return session
    # Reuse of a rotated token: somebody else holds a copy. Revoke the family, in a transaction of its
    # own that takes the user's row: it waits for a rotation of the family in flight and revokes its token.
    async with uow:
        await uow.users.lock(record.user_id)
        await uow.refresh_tokens.revoke_family(record.family_id, now)
        await uow.commit()
    if revocations is not None:
        await revocations.announce(record.user_id)
    raise InvalidCredentials("The refresh token was already used; sign in again.")
    return session


async def ensure_user(
    *, email: str, password: str, role: Role, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock
) -> tuple[User, bool]:
    """Create the account, or keep the existing one (its password is left alone) and raise it
    to ADMIN when `role` asks for that. Returns (user, created)."""
    email = normalize_email(email)
    async with uow:
        existing = await uow.users.get_by_email(email)
        if existing is not None:
            if role is Role.ADMIN and not existing.is_admin:
                await uow.users.set_role(existing.id, Role.ADMIN)
                existing = dataclasses.replace(existing, role=Role.ADMIN)
            await uow.credits.ensure_account(existing.id)
            await uow.commit()
            return existing, False
    validate_registration(email, password)
    user = User(uuid.uuid4(), email, role, clock.now(), await hasher.hash(password))
    async with uow:
        await uow.users.add(user)
        await uow.credits.ensure_account(user.id)
        await uow.commit()
    return user, True


async def ensure_admin(
    *, email: str, password: str, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock
) -> tuple[User, bool]:
    """Create an admin, or promote the existing account. Returns (user, created)."""
    return await ensure_user(email=email, password=password, role=Role.ADMIN, uow=uow, hasher=hasher, clock=clock)


async def find_user(*, email: str, uow: UnitOfWork) -> User | None:
    async with uow:
        return await uow.users.get_by_email(normalize_email(email))
