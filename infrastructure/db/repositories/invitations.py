"""Board invitations: pending, keyed by (board, normalised e-mail)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from domain.boards import BoardRole
from domain.invitations import BoardInvitation, InvitationView
from infrastructure.db.models import BoardInvitationRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware
from infrastructure.db.tables import BOARD_INVITATIONS, BOARDS


def _invitation(row: AnyRow) -> BoardInvitation:
    return BoardInvitation(
        board_id=row.board_id,
        email=row.email,
        email_as_typed=row.email_as_typed,
        role=BoardRole(row.role),
        invited_by=row.invited_by,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at),
    )


class SqlBoardInvitationRepository(SqlRepository):
    async def put(self, invitation: BoardInvitation) -> None:
        refreshed = {
            "email_as_typed": invitation.email_as_typed,
            "role": invitation.role.value,
            "invited_by": invitation.invited_by,
            "created_at": invitation.created_at,
            "expires_at": invitation.expires_at,
        }
        stmt = (
            self.insert(BoardInvitationRow)
            .values(board_id=invitation.board_id, email=invitation.email, **refreshed)
            .on_conflict_do_update(index_elements=["board_id", "email"], set_=refreshed)
        )
        await self.session.execute(stmt)

    async def get(self, board_id: uuid.UUID, email: str) -> BoardInvitation | None:
        i = BOARD_INVITATIONS.c
        row = await self.row(select(BOARD_INVITATIONS).where(i.board_id == board_id, i.email == email))
        return _invitation(row) if row else None

    async def count_open(self, board_id: uuid.UUID, now: datetime) -> int:
        i = BOARD_INVITATIONS.c
        return int((await self.scalars(select(func.count()).where(i.board_id == board_id, i.expires_at > now)))[0])

    async def delete_expired(self, board_id: uuid.UUID, now: datetime) -> None:
        stmt = delete(BoardInvitationRow).where(
            BoardInvitationRow.board_id == board_id, BoardInvitationRow.expires_at <= now
        )
        await self.session.execute(stmt)

    async def take(self, board_id: uuid.UUID, email: str, now: datetime) -> BoardInvitation | None:
        # One DELETE ... RETURNING: on PostgreSQL a concurrent taker waits for the row lock,
        # then finds the row gone; SQLite has one writer at a time.
        i = BOARD_INVITATIONS.c
        stmt = (
            delete(BOARD_INVITATIONS)
            .where(i.board_id == board_id, i.email == email, i.expires_at > now)
            .returning(*BOARD_INVITATIONS.c)
        )
        row = await self.row(stmt)
        return _invitation(row) if row else None

    async def open_for_boards(
        self, board_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, list[BoardInvitation]]:
        out: dict[uuid.UUID, list[BoardInvitation]] = defaultdict(list)
        if board_ids:
            i = BOARD_INVITATIONS.c
            stmt = (
                select(BOARD_INVITATIONS)
                .where(i.board_id.in_(set(board_ids)), i.expires_at > now)
                .order_by(i.board_id, i.created_at, i.email)
            )
            for row in await self.rows(stmt):
                out[row.board_id].append(_invitation(row))
        return dict(out)

    async def delete_for_email(self, email: str) -> int:
        i = BOARD_INVITATIONS.c
        stmt = delete(BOARD_INVITATIONS).where(i.email == email).returning(i.board_id)
        return len((await self.session.execute(stmt)).all())

    async def open_for_email(self, email: str, now: datetime) -> list[InvitationView]:
        i = BOARD_INVITATIONS.c
        stmt = (
            select(BOARD_INVITATIONS, BOARDS.c.name.label("board_name"))
            .join(BOARDS, BOARDS.c.id == i.board_id)
            .where(i.email == email, i.expires_at > now)
            .order_by(i.created_at, i.board_id)
        )
        return [InvitationView(_invitation(row), row.board_name) for row in await self.rows(stmt)]
