"""The audit log: entries added and read, newest first; never updated or deleted."""

from __future__ import annotations

from sqlalchemy import select

from domain.audit import AuditAction, AuditEntry, AuditFilter, AuditOutcome
from domain.pagination import Page, PageRequest
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, keyset
from infrastructure.db.tables import AUDIT_LOG


def _entry(row: AnyRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        created_at=aware(row.created_at),
        actor_id=row.actor_id,
        actor=row.actor,
        action=AuditAction(row.action),
        outcome=AuditOutcome(row.outcome),
        target_id=row.target_id,
        target_user_id=row.target_user_id,
        error_code=row.error_code,
        details=dict(row.details or {}),
        client_address=row.client_address,
        request_id=row.request_id,
    )


class SqlAuditLog(SqlRepository):
    async def add(self, entry: AuditEntry) -> None:
        e = entry
        await self.session.execute(
            AUDIT_LOG.insert().values(
                id=e.id,
                created_at=e.created_at,
                actor_id=e.actor_id,
                actor=e.actor,
                action=e.action.value,
                outcome=e.outcome.value,
                target_id=e.target_id,
                target_user_id=e.target_user_id,
                error_code=e.error_code,
                details=e.details,
                client_address=e.client_address,
                request_id=e.request_id,
            )
        )

    async def page(self, flt: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        c = AUDIT_LOG.c
        stmt = select(AUDIT_LOG)
        if flt.action is not None:
            stmt = stmt.where(c.action == flt.action.value)
        if flt.actor_id is not None:
            stmt = stmt.where(c.actor_id == flt.actor_id)
        if flt.target_id is not None:
            stmt = stmt.where(c.target_id == flt.target_id)
        rows = await self.rows(keyset(stmt, page, c.created_at, c.id))
        return page.cut([_entry(r) for r in rows])
