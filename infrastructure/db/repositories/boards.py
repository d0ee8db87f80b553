"""Boards and their members."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from domain.boards import Board, BoardMember, BoardRole
from infrastructure.db.models import BoardMemberRow, BoardRow
from infrastructure.db.repositories.base import SqlRepository, aware


def _board(row: BoardRow) -> Board:
    return Board(id=row.id, name=row.name, created_by=row.created_by, created_at=aware(row.created_at))


class SqlBoardRepository(SqlRepository):
    async def add(self, board: Board) -> None:
        self.session.add(
            BoardRow(id=board.id, name=board.name, created_by=board.created_by, created_at=board.created_at)
        )
        await self.session.flush()

    async def get(self, board_id: uuid.UUID) -> Board | None:
        row = await self.session.get(BoardRow, board_id)
        return _board(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Board]:
        if not ids:
            return []
        rows = (await self.session.execute(select(BoardRow).where(BoardRow.id.in_(set(ids))))).scalars()
        return [_board(r) for r in rows]

    async def role_of(self, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardRole | None:
        stmt = select(BoardMemberRow.role).where(BoardMemberRow.board_id == board_id, BoardMemberRow.user_id == user_id)
        role = (await self.session.execute(stmt)).scalar_one_or_none()
        return BoardRole(role) if role else None

    async def board_ids_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        stmt = select(BoardMemberRow.board_id).where(BoardMemberRow.user_id == user_id)
        return list((await self.session.execute(stmt)).scalars())

    async def for_user(self, user_id: uuid.UUID) -> list[Board]:
        stmt = (
            select(BoardRow)
            .join(BoardMemberRow, BoardMemberRow.board_id == BoardRow.id)
            .where(BoardMemberRow.user_id == user_id)
            .order_by(BoardRow.created_at, BoardRow.id)
        )
        return [_board(r) for r in (await self.session.execute(stmt)).scalars()]

    async def set_member(self, board_id: uuid.UUID, user_id: uuid.UUID, role: BoardRole, at: datetime) -> None:
        stmt = (
            self.insert(BoardMemberRow)
            .values(board_id=board_id, user_id=user_id, role=role.value, created_at=at)
            .on_conflict_do_update(index_elements=["board_id", "user_id"], set_={"role": role.value})
        )
        await self.session.execute(stmt)

    async def remove_member(self, board_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = (
            delete(BoardMemberRow)
            .where(BoardMemberRow.board_id == board_id, BoardMemberRow.user_id == user_id)
            .returning(BoardMemberRow.user_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def members_of(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BoardMember]]:
        out: dict[uuid.UUID, list[BoardMember]] = defaultdict(list)
        if board_ids:
            stmt = (
                select(BoardMemberRow)
                .where(BoardMemberRow.board_id.in_(set(board_ids)))
                .order_by(BoardMemberRow.board_id, BoardMemberRow.created_at, BoardMemberRow.user_id)
            )
            for r in (await self.session.execute(stmt)).scalars():
                out[r.board_id].append(BoardMember(r.board_id, r.user_id, BoardRole(r.role)))
        return dict(out)

    async def lock_members(self, board_id: uuid.UUID) -> list[BoardMember]:
        """Members with their rows locked (PostgreSQL), so two owner removals cannot race."""
        stmt = select(BoardMemberRow).where(BoardMemberRow.board_id == board_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        rows = (await self.session.execute(stmt)).scalars()
        return [BoardMember(r.board_id, r.user_id, BoardRole(r.role)) for r in rows]
