"""Boards: create, rename, delete, invite, revoke, accept or decline an invitation, remove a member, leave, read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from domain.boards import Board, BoardRole, MemberBoard
from domain.invitations import InvitationRules, InvitationView
from domain.pagination import Page, PageRequest
from domain.ports import Clock, RateBucket, RateLimiter
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import board_lifecycle, boards, invitations
from domain.use_cases import reads as read_uc
from domain.use_cases.boards import BoardView
from domain.use_cases.rate_limits import RateRule
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Boards:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work
    clock: Clock
    limiter: RateLimiter
    invitation_rules: InvitationRules
    invite_rate: RateRule

    async def create(self, principal: Principal, name: str) -> BoardView:
        return await boards.create_board(principal=principal, name=name, uow=self.uow(), clock=self.clock)

    async def invite(
        self,
        principal: Principal,
        board_id: uuid.UUID,
        email: str,
        role: BoardRole,
        *,
        also_limit: Sequence[RateBucket] = (),
    ) -> BoardView:
        return await boards.add_member(
            principal=principal,
            board_id=board_id,
            email=email,
            role=role,
            uow=self.uow(),
            clock=self.clock,
            rules=self.invitation_rules,
            limiter=self.limiter,
            rate=self.invite_rate,
            also_limit=also_limit,
        )

    async def revoke_invitation(self, principal: Principal, board_id: uuid.UUID, email: str) -> BoardView:
        return await boards.revoke_invitation(
            principal=principal, board_id=board_id, email=email, uow=self.uow(), clock=self.clock
        )

    async def accept(self, principal: Principal, board_id: uuid.UUID) -> BoardView:
        return await invitations.accept(principal=principal, board_id=board_id, uow=self.uow(), clock=self.clock)

    async def decline(self, principal: Principal, board_id: uuid.UUID) -> uuid.UUID:
        return await invitations.decline(principal=principal, board_id=board_id, uow=self.uow(), clock=self.clock)

    async def remove_member(self, principal: Principal, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardView:
        return await boards.remove_member(principal=principal, board_id=board_id, user_id=user_id, uow=self.uow())

    async def rename(self, principal: Principal, board_id: uuid.UUID, name: str) -> BoardView:
        return await board_lifecycle.rename_board(principal=principal, board_id=board_id, name=name, uow=self.uow())

    async def delete(self, principal: Principal, board_id: uuid.UUID) -> uuid.UUID:
        return await board_lifecycle.delete_board(principal=principal, board_id=board_id, uow=self.uow())

    async def leave(self, principal: Principal, board_id: uuid.UUID) -> uuid.UUID:
        return await board_lifecycle.leave_board(principal=principal, board_id=board_id, uow=self.uow())

    async def my_invitations(self, principal: Principal) -> list[InvitationView]:
        return await invitations.my_invitations(principal=principal, uow=self.reads(), clock=self.clock)

    async def get(self, principal: Principal, board_id: uuid.UUID) -> tuple[Board, BoardRole]:
        return await read_uc.get_board(principal=principal, board_id=board_id, uow=self.reads())

    async def mine(self, principal: Principal) -> list[Board]:
        return await read_uc.list_boards(principal=principal, uow=self.reads())

    async def page(self, principal: Principal, page: PageRequest) -> Page[MemberBoard]:
        return await read_uc.page_boards(principal=principal, page=page, uow=self.reads())

    async def count(self, principal: Principal) -> int:
        return await read_uc.count_boards(principal=principal, uow=self.reads())
