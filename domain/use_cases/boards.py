"""Board management: create a board, add or re-role a member by e-mail, remove a member.

A board always keeps at least one OWNER. Membership changes read the member rows
with `lock_members` (row locks on PostgreSQL) so two concurrent removals or
demotions cannot both pass the "another owner remains" check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.boards import Board, BoardMember, BoardRole, validate_board_name
from domain.errors import Forbidden, InvalidInput, InvalidState, NotFound
from domain.ports import Clock
from domain.repositories import UnitOfWork
from domain.users import MAX_EMAIL_LENGTH, Principal, normalize_email


@dataclass(frozen=True, slots=True)
class BoardView:
    """A board as seen by one member: `role` is the viewer's (before leaving, for a self-removal)."""

    board: Board
    role: BoardRole


def _owners(members: list[BoardMember]) -> int:
    return sum(1 for m in members if m.role is BoardRole.OWNER)


def _role_in(members: list[BoardMember], user_id: uuid.UUID) -> BoardRole | None:
    return next((m.role for m in members if m.user_id == user_id), None)


async def _board(uow: UnitOfWork, board_id: uuid.UUID) -> Board:
    board = await uow.boards.get(board_id)
    if board is None:
        raise NotFound("board")
    return board


async def create_board(*, principal: Principal, name: str, uow: UnitOfWork, clock: Clock) -> BoardView:
    now = clock.now()
    board = Board(id=uuid.uuid4(), name=validate_board_name(name), created_by=principal.user_id, created_at=now)
    async with uow:
        await uow.boards.add(board)
        await uow.boards.set_member(board.id, principal.user_id, BoardRole.OWNER, now)
        await uow.commit()
    return BoardView(board, BoardRole.OWNER)


async def add_member(
    *, principal: Principal, board_id: uuid.UUID, email: str, role: BoardRole, uow: UnitOfWork, clock: Clock
) -> BoardView:
    """Add the account with this e-mail, or change the role of an existing member (OWNER only)."""
    address = normalize_email(email)
    if not address or len(address) > MAX_EMAIL_LENGTH or "@" not in address:
        raise InvalidInput.single("email", "must be an e-mail address")
    async with uow:
        members = await uow.boards.lock_members(board_id)
        mine = _role_in(members, principal.user_id)
        if mine is None:
            raise NotFound("board")  # a non-member cannot tell the board exists
        if not mine.can_manage:
            raise Forbidden("Only a board OWNER can manage its members.")
        user = await uow.users.get_by_email(address)
        if user is None:
            raise NotFound("user", "No account uses this e-mail address.")
        current = _role_in(members, user.id)
        if current is BoardRole.OWNER and role is not BoardRole.OWNER and _owners(members) == 1:
            # addBoardMember's union has no InvalidState: the requested role is the bad input.
            raise InvalidInput.single("role", "the last OWNER cannot be demoted; make someone else OWNER first")
        if current is not role:
            await uow.boards.set_member(board_id, user.id, role, clock.now())
        board = await _board(uow, board_id)
        await uow.commit()
    return BoardView(board, role if user.id == principal.user_id else mine)


async def remove_member(*, principal: Principal, board_id: uuid.UUID, user_id: uuid.UUID, uow: UnitOfWork) -> BoardView:
    """An OWNER removes anyone; any member may remove themself; the last OWNER stays."""
    async with uow:
        members = await uow.boards.lock_members(board_id)
        mine = _role_in(members, principal.user_id)
        if mine is None:
            raise NotFound("board")
        if user_id != principal.user_id and not mine.can_manage:
            raise Forbidden("Only a board OWNER can remove other members.")
        target = _role_in(members, user_id)
        if target is None:
            raise NotFound("member", "This user is not a member of the board.")
        if target is BoardRole.OWNER and _owners(members) == 1:
            raise InvalidState("The last OWNER of a board cannot be removed.")
        await uow.boards.remove_member(board_id, user_id)
        board = await _board(uow, board_id)
        await uow.commit()
    return BoardView(board, mine)
