"""API keys: stored by their lookup id and secret hash, listed per user, revoked, their last use written in batches."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update

from domain.api_keys import ApiKey, KeyCredential, Scope
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, aware_opt
from infrastructure.db.tables import API_KEYS, USERS

_COLUMNS = (
    API_KEYS.c.id,
    API_KEYS.c.user_id,
    API_KEYS.c.name,
    API_KEYS.c.lookup_id,
    API_KEYS.c.scopes,
    API_KEYS.c.created_at,
    API_KEYS.c.expires_at,
    API_KEYS.c.last_used_at,
    API_KEYS.c.revoked_at,
)


def _scopes(text: str) -> frozenset[Scope]:
    # A scope this version does not know (written by a newer one) grants nothing here.
    return frozenset(Scope(s) for s in text.split(",") if s in Scope.__members__.values())


def _key(row: AnyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        lookup_id=row.lookup_id,
        scopes=_scopes(row.scopes),
        created_at=aware(row.created_at),
        expires_at=aware_opt(row.expires_at),
        last_used_at=aware_opt(row.last_used_at),
        revoked_at=aware_opt(row.revoked_at),
    )


def _live(now: datetime) -> object:
    c = API_KEYS.c
    return (c.revoked_at.is_(None)) & or_(c.expires_at.is_(None), c.expires_at > now)


class SqlApiKeyRepository(SqlRepository):
    async def add(self, key: ApiKey, secret_hash: str) -> None:
        await self.session.execute(
            API_KEYS.insert().values(
                id=key.id,
                user_id=key.user_id,
                name=key.name,
                lookup_id=key.lookup_id,
                secret_hash=secret_hash,
                scopes=",".join(sorted(s.value for s in key.scopes)),
                created_at=key.created_at,
                expires_at=key.expires_at,
            )
        )

    async def credential(self, lookup_id: str) -> KeyCredential | None:
        stmt = (
            select(*_COLUMNS, API_KEYS.c.secret_hash, USERS.c.role)
            .join(USERS, USERS.c.id == API_KEYS.c.user_id)
            .where(API_KEYS.c.lookup_id == lookup_id, USERS.c.deleted_at.is_(None))
        )
        row = await self.row(stmt)
        if row is None:
            return None
        return KeyCredential(key=_key(row), secret_hash=row.secret_hash, owner_is_admin=row.role == "admin")

    async def of_user(self, user_id: uuid.UUID) -> list[ApiKey]:
        c = API_KEYS.c
        rows = await self.rows(select(*_COLUMNS).where(c.user_id == user_id).order_by(c.created_at.desc(), c.id))
        return [_key(r) for r in rows]

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        row = await self.row(select(*_COLUMNS).where(API_KEYS.c.id == key_id))
        return _key(row) if row is not None else None

    async def count_live(self, user_id: uuid.UUID, now: datetime) -> int:
        c = API_KEYS.c
        stmt = select(c.id).where(c.user_id == user_id, _live(now))  # type: ignore[arg-type]
        return len(await self.rows(stmt))

    async def revoke(self, key_id: uuid.UUID, at: datetime) -> ApiKey | None:
        c = API_KEYS.c
        stmt = update(API_KEYS).where(c.id == key_id, c.revoked_at.is_(None)).values(revoked_at=at).returning(*_COLUMNS)
        row = (await self.session.execute(stmt)).one_or_none()
        return _key(row) if row is not None else None

    async def revoke_all_of(self, user_id: uuid.UUID, at: datetime) -> int:
        c = API_KEYS.c
        stmt = (
            update(API_KEYS).where(c.user_id == user_id, c.revoked_at.is_(None)).values(revoked_at=at).returning(c.id)
        )
        return len((await self.session.execute(stmt)).all())

    async def record_use(self, used: Mapping[uuid.UUID, datetime]) -> None:
        if not used:
            return
        c = API_KEYS.c
        stmt = (
            update(API_KEYS)
            .where(c.id == bindparam("b_id"), or_(c.last_used_at.is_(None), c.last_used_at < bindparam("b_at")))
            .values(last_used_at=bindparam("b_at"))
        )
        connection = await self.session.connection()
        await connection.execute(stmt, [{"b_id": key_id, "b_at": at} for key_id, at in used.items()])
