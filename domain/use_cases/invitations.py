"""The invitee's side of board invitations: list, accept, decline.

An invitation belongs to whoever signs in with its address: the account's e-mail is read
from the database (the token holds only the user id), so an account registered after the
invitation sees it too.
"""

from __future__ import annotations

import uuid

from domain.boards import BoardRole
from domain.errors import NotFound
from domain.invitations import BoardInvitation, InvitationView
from domain.ports import Clock
from domain.repositories import UnitOfWork
from domain.use_cases.boards import BoardView
from domain.use_cases.live_accounts import hold_live
from domain.users import Principal

_NONE_OPEN = "You have no open invitation to this board."


async def my_invitations(*, principal: Principal, uow: UnitOfWork, clock: Clock) -> list[InvitationView]:
    async with uow:
        user = await uow.users.get(principal.user_id)
        if user is None:
            return []
        return await uow.invitations.open_for_email(user.email, clock.now())


async def _take(uow: UnitOfWork, principal: Principal, board_id: uuid.UUID, clock: Clock) -> BoardInvitation:
    user = await uow.users.get(principal.user_id)
    invitation = await uow.invitations.take(board_id, user.email, clock.now()) if user is not None else None
    if invitation is None:
        raise NotFound("invitation", _NONE_OPEN)
    return invitation


async def accept(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork, clock: Clock) -> BoardView:
    """Become a member with the invited role; the invitation is used up (accepting twice is NotFound).

    Someone already a member keeps their role (an invitation never demotes, e.g. the last OWNER).
    """
    async with uow:
        await hold_live(uow, principal.user_id)  # first: not for an account deleted meanwhile
        invitation = await _take(uow, principal, board_id, clock)
        role: BoardRole | None = await uow.boards.role_of(board_id, principal.user_id)
        if role is None:
            role = invitation.role
            await uow.boards.set_member(board_id, principal.user_id, role, clock.now())
        board = await uow.boards.get(board_id)
        if board is None:  # deleted boards take their invitations with them; kept for the type
            raise NotFound("invitation", _NONE_OPEN)
        await uow.commit()
    return BoardView(board, role)


async def decline(*, principal: Principal, board_id: uuid.UUID, uow: UnitOfWork, clock: Clock) -> uuid.UUID:
    """Drop the invitation; the board's managers see it gone, as if it had been revoked."""
    async with uow:
        await _take(uow, principal, board_id, clock)
        await uow.commit()
    return board_id
