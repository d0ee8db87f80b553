"""Boards and their members."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, literal, select, union_all, update

from domain.boards import Board, BoardMember, BoardRole, MemberBoard, Membership
from domain.pagination import Page, PageRequest
from infrastructure.db.models import BoardMemberRow, BoardRow
from infrastructure.db.repositories.base import AnyRow, SqlRepository, aware, keyset
from infrastructure.db.tables import BOARD_MEMBERS, BOARDS


def _board(row: AnyRow) -> Board:
    return Board(id=row.id, name=row.name, created_by=row.created_by, created_at=aware(row.created_at))


class SqlBoardRepository(SqlRepository):
    async def add(self, board: Board) -> None:
        self.session.add(
            BoardRow(id=board.id, name=board.name, created_by=board.created_by, created_at=board.created_at)
        )
        await self.session.flush()

    async def get(self, board_id: uuid.UUID) -> Board | None:
        row = await self.row(select(BOARDS).where(BOARDS.c.id == board_id))
        return _board(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Board]:
        return [_board(r) for r in await self.by_ids(BOARDS, ids)]

    async def with_role(self, board_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Board, BoardRole] | None:
        m = BOARD_MEMBERS.c
        stmt = (
            select(BOARDS, m.role)
            .join(BOARD_MEMBERS, m.board_id == BOARDS.c.id)
            .where(BOARDS.c.id == board_id, m.user_id == user_id)
        )
        row = await self.row(stmt)
        return (_board(row), BoardRole(row.role)) if row else None

    async def role_of(self, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardRole | None:
        m = BOARD_MEMBERS.c
        row = await self.row(select(m.role).where(m.board_id == board_id, m.user_id == user_id))
        return BoardRole(row.role) if row else None

    async def board_ids_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        m = BOARD_MEMBERS.c
        return list(await self.scalars(select(m.board_id).where(m.user_id == user_id)))

    async def for_user(self, user_id: uuid.UUID) -> list[Board]:
        m = BOARD_MEMBERS.c
        stmt = (
            select(BOARDS)
            .join(BOARD_MEMBERS, m.board_id == BOARDS.c.id)
            .where(m.user_id == user_id)
            .order_by(BOARDS.c.created_at, BOARDS.c.id)
        )
        return [_board(r) for r in await self.rows(stmt)]

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

    async def page_for_user(self, user_id: uuid.UUID, page: PageRequest) -> Page[MemberBoard]:
        m = BOARD_MEMBERS.c
        stmt = select(BOARDS, m.role).join(BOARD_MEMBERS, m.board_id == BOARDS.c.id).where(m.user_id == user_id)
        rows = await self.rows(keyset(stmt, page, BOARDS.c.created_at, BOARDS.c.id))
        return page.cut([MemberBoard(_board(r), BoardRole(r.role)) for r in rows])

    async def count_for_user(self, user_id: uuid.UUID) -> int:
        m = BOARD_MEMBERS.c
        return int((await self.scalars(select(func.count()).where(m.user_id == user_id)))[0])

    async def member_pages(self, pages: Sequence[tuple[uuid.UUID, PageRequest]]) -> list[Page[Membership]]:
        if not pages:
            return []
        m = BOARD_MEMBERS.c
        parts = [
            keyset(
                select(literal(i).label("part"), m.board_id, m.user_id, m.role, m.created_at).where(
                    m.board_id == board_id
                ),
                page,
                m.created_at,
                m.user_id,
            ).subquery()
            for i, (board_id, page) in enumerate(pages)
        ]
        union = union_all(*(select(part) for part in parts)).subquery()
        stmt = select(union).order_by(union.c.part, union.c.created_at.desc(), union.c.user_id.desc())
        found: list[list[Membership]] = [[] for _ in pages]
        for r in await self.rows(stmt):
            member = BoardMember(r.board_id, r.user_id, BoardRole(r.role))
            found[r.part].append(Membership(member, aware(r.created_at)))
        for items, (_, page) in zip(found, pages, strict=True):
            if page.backward:  # read oldest first: `cut` expects them so
                items.reverse()
        return [page.cut(items) for items, (_, page) in zip(found, pages, strict=True)]

    async def member_counts(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not board_ids:
            return {}
        m = BOARD_MEMBERS.c
        stmt = select(m.board_id, func.count()).where(m.board_id.in_(set(board_ids))).group_by(m.board_id)
        return {r[0]: int(r[1]) for r in await self.rows(stmt)}

    async def members_of(self, board_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BoardMember]]:
        out: dict[uuid.UUID, list[BoardMember]] = defaultdict(list)
        if board_ids:
            m = BOARD_MEMBERS.c
            stmt = (
                select(m.board_id, m.user_id, m.role)
                .where(m.board_id.in_(set(board_ids)))
                .order_by(m.board_id, m.created_at, m.user_id)
            )
            for r in await self.rows(stmt):
                out[r.board_id].append(BoardMember(r.board_id, r.user_id, BoardRole(r.role)))
        return dict(out)

    async def rename(self, board_id: uuid.UUID, name: str) -> Board | None:
        stmt = update(BOARDS).where(BOARDS.c.id == board_id).values(name=name).returning(*BOARDS.c)
        row = (await self.session.execute(stmt)).one_or_none()
        return _board(row) if row else None

    async def delete(self, board_id: uuid.UUID) -> bool:
        # Memberships and invitations go by their ON DELETE CASCADE; generations.board_id is SET NULL.
        stmt = delete(BoardRow).where(BoardRow.id == board_id).returning(BoardRow.id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def lock_members(self, board_id: uuid.UUID) -> list[BoardMember]:
        """Members with their rows locked (PostgreSQL), so two owner removals cannot race."""
        m = BOARD_MEMBERS.c
        stmt = select(m.board_id, m.user_id, m.role).where(m.board_id == board_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        rows = await self.rows(stmt)
        return [BoardMember(r.board_id, r.user_id, BoardRole(r.role)) for r in rows]
