"""Board management: create a board, invite by e-mail or re-role a member, remove a member.

A board always keeps at least one OWNER. Membership changes read the member rows
with `lock_members` (row locks on PostgreSQL) so two concurrent removals or
demotions cannot both pass the "another owner remains" check.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.boards import Board, BoardMember, BoardRole, validate_board_name
from domain.errors import Forbidden, InvalidInput, InvalidState, NotFound, QuotaExceeded
from domain.invitations import BoardInvitation, InvitationRules, InvitedAddress, invited_address
from domain.ports import Clock, RateBucket, RateLimiter
from domain.repositories import UnitOfWork
from domain.use_cases.live_accounts import hold_live
from domain.use_cases.rate_limits import RateRule, enforce
from domain.users import Principal


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
        await hold_live(uow, principal.user_id)  # first: not for an account deleted meanwhile
        await uow.boards.add(board)
        await uow.boards.set_member(board.id, principal.user_id, BoardRole.OWNER, now)
        await uow.commit()
    return BoardView(board, BoardRole.OWNER)


async def add_member(
    *,
    principal: Principal,
    board_id: uuid.UUID,
    email: str,
    role: BoardRole,
    uow: UnitOfWork,
    clock: Clock,
    rules: InvitationRules,
    limiter: RateLimiter | None = None,
    rate: RateRule | None = None,
    also_limit: Sequence[RateBucket] = (),
) -> BoardView:
    """Invite an address to the board with a role, or change the role of a current member (OWNER only).

    The answer must not tell whether an account uses the address: a non-member's address
    always gets a pending invitation (recorded or refreshed), and nothing on that path reads
    accounts. Only the members' own addresses, which the managers see anyway, are compared.
    """
    await enforce(limiter, bucket=f"invite:{principal.user_id}", rule=rate, also=also_limit)
    address = invited_address(email)
    now = clock.now()
    async with uow:
        members = await uow.boards.lock_members(board_id)
        mine = _role_in(members, principal.user_id)
        if mine is None:
            raise NotFound("board")  # a non-member cannot tell the board exists
        if not mine.can_manage:
            raise Forbidden("Only a board OWNER can manage its members.")
        accounts = await uow.users.get_many([m.user_id for m in members])
        member = next((u.id for u in accounts if u.email == address.normalised), None)
        if member is None:
            await _invite(uow, board_id, address, role, principal.user_id, now, rules)
        else:
            current = _role_in(members, member)
            if current is BoardRole.OWNER and role is not BoardRole.OWNER and _owners(members) == 1:
                # addBoardMember's union has no InvalidState: the requested role is the bad input.
                raise InvalidInput.single("role", "the last OWNER cannot be demoted; make someone else OWNER first")
            if current is not role:
                await uow.boards.set_member(board_id, member, role, now)
        board = await _board(uow, board_id)
        await uow.commit()
    return BoardView(board, role if member == principal.user_id else mine)


async def _invite(
    uow: UnitOfWork,
    board_id: uuid.UUID,
    address: InvitedAddress,
    role: BoardRole,
    inviter: uuid.UUID,
    now: datetime,
    rules: InvitationRules,
) -> None:
    """Record or refresh the invitation; a new address past the board's cap is QuotaExceeded.

    Callers hold the board's member rows locked, so two managers cannot both pass the cap.
    """
    await uow.invitations.delete_expired(board_id, now)
    if (
        await uow.invitations.get(board_id, address.normalised) is None
        and await uow.invitations.count_open(board_id, now) >= rules.max_pending_per_board
    ):
        raise QuotaExceeded(
            rules.max_pending_per_board,
            f"This board has {rules.max_pending_per_board} pending invitations, the most allowed: "
            "revoke some or wait until they expire.",
        )
    invitation = BoardInvitation(
        board_id=board_id,
        email=address.normalised,
        email_as_typed=address.typed,
        role=role,
        invited_by=inviter,
        created_at=now,
        expires_at=now + rules.ttl,
    )
    await uow.invitations.put(invitation)


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


async def revoke_invitation(
    *, principal: Principal, board_id: uuid.UUID, email: str, uow: UnitOfWork, clock: Clock
) -> BoardView:
    """Cancel the board's open invitation for this address (OWNER only)."""
    address = invited_address(email)
    async with uow:
        members = await uow.boards.lock_members(board_id)
        mine = _role_in(members, principal.user_id)
        if mine is None:
            raise NotFound("board")
        if not mine.can_manage:
            raise Forbidden("Only a board OWNER can manage its invitations.")
        if await uow.invitations.take(board_id, address.normalised, clock.now()) is None:
            raise NotFound("invitation", "This board has no open invitation for this address.")
        board = await _board(uow, board_id)
        await uow.commit()
    return BoardView(board, mine)
