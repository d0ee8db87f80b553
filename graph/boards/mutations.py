"""createBoard, addBoardMember (an invitation), removeBoardMember, and the invitations' mutations."""

from __future__ import annotations

from datetime import timedelta

import strawberry

from domain.invitations import InvitationRules
from domain.use_cases import boards, invitations
from domain.use_cases.boards import BoardView
from domain.use_cases.rate_limits import RateRule
from graph.boards.types import (
    AcceptBoardInvitationResult,
    AddBoardMemberInput,
    AddBoardMemberResult,
    Board,
    BoardSuccess,
    CreateBoardInput,
    CreateBoardResult,
    DeclineBoardInvitationResult,
    DeclineBoardInvitationSuccess,
    RemoveBoardMemberInput,
    RemoveBoardMemberResult,
    RevokeBoardInvitationInput,
    RevokeBoardInvitationResult,
)
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.throttle import ip_bucket
from infrastructure.settings import Settings


def _success(view: BoardView) -> BoardSuccess:
    return BoardSuccess(board=Board.from_domain(view.board, view.role))


def _invitation_rules(settings: Settings) -> InvitationRules:
    return InvitationRules(
        ttl=timedelta(seconds=settings.board_invitation_ttl_seconds),
        max_pending_per_board=settings.board_invitation_max_pending,
    )


@strawberry.type
class BoardMutations:
    @strawberry.mutation(
        description="Create a board; the viewer becomes its OWNER.", permission_classes=[IsAuthenticated]
    )
    async def create_board(self, info: Info, input: CreateBoardInput) -> CreateBoardResult:
        c = info.context.container

        view = await boards.create_board(
            principal=info.context.require_viewer(), name=input.name, uow=c.uow(), clock=c.clock
        )
        return _success(view)

    @strawberry.mutation(
        description="Invite an e-mail address to a board with a role (OWNER only): records or refreshes a "
        "pending invitation that whoever signs in with the address may accept (acceptBoardInvitation). "
        "The answer is the same whether or not an account uses the address; the address of a current "
        "member changes that member's role instead. Rate-limited per user; pending invitations per board "
        "are capped.",
        permission_classes=[IsAuthenticated],
    )
    async def add_board_member(self, info: Info, input: AddBoardMemberInput) -> AddBoardMemberResult:
        c = info.context.container
        settings = c.settings

        view = await boards.add_member(
            principal=info.context.require_viewer(),
            board_id=parse_id(input.board_id, "boardId"),
            email=input.email,
            role=input.role,
            uow=c.uow(),
            clock=c.clock,
            rules=_invitation_rules(settings),
            limiter=c.limiter,
            rate=RateRule(settings.rate_limit_invite, settings.rate_limit_window_seconds),
            also_limit=[ip_bucket(info.context, "invite", settings.rate_limit_invite, signed_in=True)],
        )
        return _success(view)

    @strawberry.mutation(
        description="Cancel a board's pending invitation for an e-mail address (OWNER only).",
        permission_classes=[IsAuthenticated],
    )
    async def revoke_board_invitation(
        self, info: Info, input: RevokeBoardInvitationInput
    ) -> RevokeBoardInvitationResult:
        c = info.context.container

        view = await boards.revoke_invitation(
            principal=info.context.require_viewer(),
            board_id=lookup_id(input.board_id, "board"),
            email=input.email,
            uow=c.uow(),
            clock=c.clock,
        )
        return _success(view)

    @strawberry.mutation(
        description="Accept the viewer's pending invitation to a board: the viewer becomes a member with the "
        "invited role (a member already keeps their role). The invitation is used up.",
        permission_classes=[IsAuthenticated],
    )
    async def accept_board_invitation(self, info: Info, board_id: strawberry.ID) -> AcceptBoardInvitationResult:
        c = info.context.container

        view = await invitations.accept(
            principal=info.context.require_viewer(),
            board_id=lookup_id(board_id, "invitation"),
            uow=c.uow(),
            clock=c.clock,
        )
        return _success(view)

    @strawberry.mutation(
        description="Decline the viewer's pending invitation to a board; it is gone.",
        permission_classes=[IsAuthenticated],
    )
    async def decline_board_invitation(self, info: Info, board_id: strawberry.ID) -> DeclineBoardInvitationResult:
        c = info.context.container

        declined = await invitations.decline(
            principal=info.context.require_viewer(),
            board_id=lookup_id(board_id, "invitation"),
            uow=c.uow(),
            clock=c.clock,
        )
        return DeclineBoardInvitationSuccess(board_id=strawberry.ID(str(declined)))

    @strawberry.mutation(
        description="Remove a member (OWNER), or leave a board (any member); the last OWNER cannot be removed.",
        permission_classes=[IsAuthenticated],
    )
    async def remove_board_member(self, info: Info, input: RemoveBoardMemberInput) -> RemoveBoardMemberResult:
        c = info.context.container

        view = await boards.remove_member(
            principal=info.context.require_viewer(),
            board_id=lookup_id(input.board_id, "board"),
            user_id=lookup_id(input.user_id, "member"),
            uow=c.uow(),
        )
        return _success(view)
