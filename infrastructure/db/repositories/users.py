"""Users and refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from domain.errors import EmailTaken
from domain.repositories import RefreshTokenRecord
from domain.users import AccessState, Role, User
from infrastructure.db.models import RefreshTokenRow, UserRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, aware_opt
from infrastructure.db.tables import OUTBOUND_EMAILS, REFRESH_TOKENS, USERS


def _user(row: AnyRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        created_at=aware(row.created_at),
        password_hash=row.password_hash,
        deleted_at=aware_opt(row.deleted_at),
        session_version=row.session_version,
        suspended_at=aware_opt(row.suspended_at),
    )


class SqlUserRepository(SqlRepository):
    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self.row(select(USERS).where(USERS.c.id == user_id))
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = await self.row(select(USERS).where(USERS.c.email == email))
        return _user(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]:
        return [_user(r) for r in await self.by_ids(USERS, ids)]

    async def add(self, user: User) -> None:
        row = UserRow(
            id=user.id,
            email=user.email,
            password_hash=user.password_hash,
            role=user.role.value,
            created_at=user.created_at,
        )
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError as exc:
            raise EmailTaken() from exc

    async def set_role(self, user_id: uuid.UUID, role: Role) -> None:
        await self.session.execute(update(UserRow).where(UserRow.id == user_id).values(role=role.value))

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash))

    async def lock(self, user_id: uuid.UUID) -> User | None:
        stmt = select(USERS).where(USERS.c.id == user_id)
        if self.dialect == "postgresql":
            # NO KEY UPDATE: rows that reference the user (a ledger row a finalizing worker inserts while
            # it holds its generation) do not wait for this lock, so they cannot deadlock against it.
            stmt = stmt.with_for_update(key_share=True)
        row = await self.row(stmt)
        return _user(row) if row else None

    async def hold(self, user_id: uuid.UUID) -> User | None:
        stmt = select(USERS).where(USERS.c.id == user_id)
        if self.dialect == "postgresql":
            # FOR SHARE: conflicts with the row lock of a revocation (FOR NO KEY UPDATE, or an UPDATE of
            # the row), not with other holders nor with the foreign-key checks of rows that name the user.
            stmt = stmt.with_for_update(read=True)
        row = await self.row(stmt)
        return _user(row) if row else None

    async def tombstone(self, user_id: uuid.UUID, *, email: str, at: datetime) -> None:
        # Mail to the address goes first, pending or settled: a pending one (an export's link) would still
        # be sent, a settled one would keep the address for the purge's retention.
        address = select(USERS.c.email).where(USERS.c.id == user_id).scalar_subquery()
        await self.session.execute(
            delete(OUTBOUND_EMAILS).where(func.lower(OUTBOUND_EMAILS.c.recipient) == func.lower(address))
        )
        stmt = update(UserRow).where(UserRow.id == user_id).values(email=email, password_hash="", deleted_at=at)
        await self.session.execute(stmt)

    async def access_state(self, user_id: uuid.UUID, *, ended_since: datetime) -> AccessState | None:
        row = await self.row(
            select(USERS.c.session_version, USERS.c.suspended_at).where(
                USERS.c.id == user_id, USERS.c.deleted_at.is_(None)
            )
        )
        if row is None:  # no such user, or a deleted account's tombstone
            return None
        ended = await self.rows(
            select(REFRESH_TOKENS.c.family_id)
            .where(REFRESH_TOKENS.c.user_id == user_id, REFRESH_TOKENS.c.revoked_at >= ended_since)
            .distinct()
        )
        return AccessState(
            session_version=row.session_version,
            suspended=row.suspended_at is not None,
            ended_sessions=frozenset(r.family_id for r in ended),
        )

    async def end_sessions(self, user_id: uuid.UUID, at: datetime) -> int | None:
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id)
            .values(session_version=UserRow.session_version + 1, sessions_valid_after=at)
            .returning(UserRow.session_version)
        )
        version: int | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return version

    async def set_suspended(self, user_id: uuid.UUID, at: datetime | None) -> bool:
        # Suspending again keeps the first moment; reinstating a user who is not suspended changes nothing.
        value = func.coalesce(UserRow.suspended_at, at) if at is not None else None
        stmt = update(UserRow).where(UserRow.id == user_id).values(suspended_at=value).returning(UserRow.id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None


def _token(row: AnyRow) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        id=row.id,
        user_id=row.user_id,
        family_id=row.family_id,
        token_hash=row.token_hash,
        expires_at=aware(row.expires_at),
        created_at=aware(row.created_at),
        used_at=aware_opt(row.used_at),
        revoked_at=aware_opt(row.revoked_at),
    )


class SqlRefreshTokenRepository(SqlRepository):
    async def add(self, record: RefreshTokenRecord) -> None:
        self.session.add(
            RefreshTokenRow(
                id=record.id,
                user_id=record.user_id,
                family_id=record.family_id,
                token_hash=record.token_hash,
                expires_at=record.expires_at,
                created_at=record.created_at,
            )
        )
        await self.session.flush()

    async def get_by_hash(self, token_hash: str) -> RefreshTokenRecord | None:
        row = await self.row(select(REFRESH_TOKENS).where(REFRESH_TOKENS.c.token_hash == token_hash))
        return _token(row) if row else None

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> bool:
        stmt = (
            update(RefreshTokenRow)
            .where(
                RefreshTokenRow.id == token_id,
                RefreshTokenRow.used_at.is_(None),
                RefreshTokenRow.revoked_at.is_(None),
            )
            .values(used_at=at)
            .returning(RefreshTokenRow.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.family_id == family_id, RefreshTokenRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    async def delete_all_of(self, user_id: uuid.UUID) -> int:
        stmt = delete(RefreshTokenRow).where(RefreshTokenRow.user_id == user_id).returning(RefreshTokenRow.id)
        return len((await self.session.execute(stmt)).all())

    async def revoke_family_of(self, user_id: uuid.UUID, family_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(RefreshTokenRow)
            .where(
                RefreshTokenRow.family_id == family_id,
                RefreshTokenRow.user_id == user_id,
                RefreshTokenRow.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )

    async def revoke_all(self, user_id: uuid.UUID, at: datetime, *, keep_family: uuid.UUID | None = None) -> int:
        stmt = update(RefreshTokenRow).where(RefreshTokenRow.user_id == user_id, RefreshTokenRow.revoked_at.is_(None))
        if keep_family is not None:
            stmt = stmt.where(RefreshTokenRow.family_id != keep_family)
        result = await self.session.execute(stmt.values(revoked_at=at).returning(RefreshTokenRow.id))
        return len(result.all())
