"""Renaming, deleting and leaving a board.

Rename and delete are the OWNER's (an EDITOR or VIEWER gets Forbidden, a non-member
NotFound: the board's existence is not told). Deleting a board removes its memberships
and invitations; its generations stay their starters', detached from the board. Leaving
is `remove_member` of oneself: the last OWNER cannot leave (InvalidState) and must make
someone else OWNER, or delete the board. Each reads the member rows with `lock_members`,
so a deletion and a concurrent role change or removal are serialised.
"""

from __future__ import annotations

import uuid

from domain.boards import BoardMember, BoardRole, validate_board_name
from domain.errors import Forbidden, NotFound
from domain.repositories import UnitOfWork
from domain.use_cases.boards import BoardView, remove_member
from domain.users import Principal


def _managed_by(members: list[BoardMember], principal: Principal, action: str) -> BoardRole:
    mine = next((m.role for m in members if m.user_id == principal.user_id), None)
    if mine is None:
        raise NotFound("board")
    if not mine.can_manage:
        raise Forbidden(f"Only a board OWNER can {action} it.")
    return mine


async def rename_board(*, principal: Principal, board_id: uuid.UUID, name: str, uow: UnitOfWork) -> BoardView:
    cleaned = validate_board_name(name)
    async with uow:
        mine = _managed_by(await uow.boards.lock_members(board_id), principal, "rename")
        board = await uow.boards.rename(board_id, cleaned)
        if board is None:
            raise NotFound("board")
        await uow.commit()
    return BoardView(board, mine)


async def delete_board(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork) -> uuid.UUID:
    async with uow:
        _managed_by(await uow.boards.lock_members(board_id), principal, "delete")
        if not await uow.boards.delete(board_id):
            raise NotFound("board")
        await uow.commit()
    return board_id


async def leave_board(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork) -> uuid.UUID:
    await remove_member(principal=principal, board_id=board_id, user_id=principal.user_id, uow=uow)
    return board_id
