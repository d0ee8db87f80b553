"""Password reset tokens (their hashes): issued by e-mail address, used up once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, insert, literal, select, text, update

from domain.repositories import PendingReset
from infrastructure.db.models import PasswordResetRow, UserRow
from infrastructure.db.repositories.base import SqlRepository


class SqlPasswordResetRepository(SqlRepository):
    async def issue(
        self, email: str, *, reset_id: uuid.UUID, token_hash: str, at: datetime, expires_at: datetime
    ) -> uuid.UUID | None:
        """A new reset for the live account with this e-mail (its older unused ones used up); the
        account's id, or None when there is none.

        The same statements run whether the account exists or not, and on PostgreSQL the commit
        does not wait for its WAL flush (a write's flush would otherwise tell an existing address
        by its timing): a crash right after may lose the reset, and the user asks again.

        The user's row is held FOR SHARE first, as deleteAccount locks it before it changes the
        e-mail and deletes the resets: a request waits for a deletion under way (then finds no
        account), and a deletion for a request, instead of each holding what the other needs.
        """
        if self.dialect == "postgresql":
            await self.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        live = select(UserRow.id).where(UserRow.email == email, UserRow.deleted_at.is_(None))
        await self.session.execute(live.with_for_update(read=True) if self.dialect == "postgresql" else live)
        account = select(UserRow.id).where(UserRow.email == email, UserRow.deleted_at.is_(None)).scalar_subquery()
        await self.session.execute(
            update(PasswordResetRow)
            .where(PasswordResetRow.user_id == account, PasswordResetRow.used_at.is_(None))
            .values(used_at=at)
        )
        columns = PasswordResetRow.__table__.c
        issued = select(
            literal(reset_id, columns.id.type),
            UserRow.id,
            literal(token_hash, columns.token_hash.type),
            literal(at, columns.created_at.type),
            literal(expires_at, columns.expires_at.type),
        ).where(UserRow.email == email, UserRow.deleted_at.is_(None))
        stmt = (
            insert(PasswordResetRow)
            .from_select(["id", "user_id", "token_hash", "created_at", "expires_at"], issued)
            .returning(PasswordResetRow.user_id)
        )
        user_id: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return user_id

    async def pending(self, reset_id: uuid.UUID, at: datetime) -> PendingReset | None:
        stmt = (
            select(UserRow.email, PasswordResetRow.token_hash)
            .join(PasswordResetRow, PasswordResetRow.user_id == UserRow.id)
            .where(
                PasswordResetRow.id == reset_id,
                PasswordResetRow.used_at.is_(None),
                PasswordResetRow.expires_at > at,
                UserRow.deleted_at.is_(None),
            )
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else PendingReset(email=row.email, token_hash=row.token_hash)

    async def owner(self, token_hash: str) -> uuid.UUID | None:
        stmt = select(PasswordResetRow.user_id).where(PasswordResetRow.token_hash == token_hash)
        user_id: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return user_id

    async def use(self, token_hash: str, at: datetime) -> uuid.UUID | None:
        """Use up an unused, unexpired token (and the user's other unused ones): its user, or None
        (unknown, used or expired). Of concurrent uses of one token exactly one gets the user."""
        stmt = (
            update(PasswordResetRow)
            .where(
                PasswordResetRow.token_hash == token_hash,
                PasswordResetRow.used_at.is_(None),
                PasswordResetRow.expires_at > at,
            )
            .values(used_at=at)
            .returning(PasswordResetRow.user_id)
        )
        user_id: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        if user_id is not None:
            await self.session.execute(
                update(PasswordResetRow)
                .where(PasswordResetRow.user_id == user_id, PasswordResetRow.used_at.is_(None))
                .values(used_at=at)
            )
        return user_id

    async def delete_all_of(self, user_id: uuid.UUID) -> int:
        stmt = delete(PasswordResetRow).where(PasswordResetRow.user_id == user_id).returning(PasswordResetRow.id)
        return len((await self.session.execute(stmt)).all())
