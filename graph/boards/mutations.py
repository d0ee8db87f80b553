"""createBoard, renameBoard, deleteBoard, addBoardMember (an invitation), removeBoardMember, leaveBoard, and the
invitations' mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.use_cases.boards import BoardView
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
    DeleteBoardResult,
    DeleteBoardSuccess,
    LeaveBoardResult,
    LeaveBoardSuccess,
    RemoveBoardMemberInput,
    RemoveBoardMemberResult,
    RenameBoardInput,
    RenameBoardResult,
    RevokeBoardInvitationInput,
    RevokeBoardInvitationResult,
)
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.throttle import ip_bucket


def _success(view: BoardView) -> BoardSuccess:
    return BoardSuccess(board=Board.from_domain(view.board, view.role))


@strawberry.type
class BoardMutations:
    @strawberry.mutation(
        description="Create a board; the viewer becomes its OWNER.", permission_classes=[IsAuthenticated]
    )
    async def create_board(
        self, info: Info, input: Annotated[CreateBoardInput, strawberry.argument(description="The board's name.")]
    ) -> CreateBoardResult:
        view = await info.context.services.boards.create(info.context.require_viewer(), input.name)
        return _success(view)

    @strawberry.mutation(description="Rename a board (OWNER only).", permission_classes=[IsAuthenticated])
    async def rename_board(
        self,
        info: Info,
        input: Annotated[RenameBoardInput, strawberry.argument(description="The board and its new name.")],
    ) -> RenameBoardResult:
        view = await info.context.services.boards.rename(
            info.context.require_viewer(), lookup_id(input.board_id, "board"), input.name
        )
        return _success(view)

    @strawberry.mutation(
        description="Delete a board (OWNER only): its memberships and pending invitations go; its generations "
        "stay their starters', no longer in a board.",
        permission_classes=[IsAuthenticated],
    )
    async def delete_board(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The board's id.")]
    ) -> DeleteBoardResult:
        deleted = await info.context.services.boards.delete(info.context.require_viewer(), lookup_id(id, "board"))
        return DeleteBoardSuccess(board_id=strawberry.ID(str(deleted)))

    @strawberry.mutation(
        description="Leave a board (any member). The last OWNER cannot leave (InvalidState): make another member "
        "OWNER first, or delete the board.",
        permission_classes=[IsAuthenticated],
    )
    async def leave_board(
        self, info: Info, board_id: Annotated[strawberry.ID, strawberry.argument(description="The board's id.")]
    ) -> LeaveBoardResult:
        left = await info.context.services.boards.leave(info.context.require_viewer(), lookup_id(board_id, "board"))
        return LeaveBoardSuccess(board_id=strawberry.ID(str(left)))

    @strawberry.mutation(
        description="Invite an e-mail address to a board with a role (OWNER only): records or refreshes a "
        "pending invitation that whoever signs in with the address may accept (acceptBoardInvitation). "
        "The answer is the same whether or not an account uses the address; the address of a current "
        "member changes that member's role instead. Rate-limited per user; pending invitations per board "
        "are capped.",
        permission_classes=[IsAuthenticated],
    )
    async def add_board_member(
        self,
        info: Info,
        input: Annotated[
            AddBoardMemberInput, strawberry.argument(description="The board, the e-mail address and the role.")
        ],
    ) -> AddBoardMemberResult:
        ctx = info.context
        view = await ctx.services.boards.invite(
            ctx.require_viewer(),
            parse_id(input.board_id, "boardId"),
            input.email,
            input.role,
            also_limit=[ip_bucket(ctx, "invite", ctx.services.settings.rate_limit_invite, signed_in=True)],
        )
        return _success(view)

    @strawberry.mutation(
        description="Cancel a board's pending invitation for an e-mail address (OWNER only).",
        permission_classes=[IsAuthenticated],
    )
    async def revoke_board_invitation(
        self,
        info: Info,
        input: Annotated[
            RevokeBoardInvitationInput, strawberry.argument(description="The board and the invited e-mail address.")
        ],
    ) -> RevokeBoardInvitationResult:
        view = await info.context.services.boards.revoke_invitation(
            info.context.require_viewer(), lookup_id(input.board_id, "board"), input.email
        )
        return _success(view)

    @strawberry.mutation(
        description="Accept the viewer's pending invitation to a board: the viewer becomes a member with the "
        "invited role (a member already keeps their role). The invitation is used up.",
        permission_classes=[IsAuthenticated],
    )
    async def accept_board_invitation(
        self, info: Info, board_id: Annotated[strawberry.ID, strawberry.argument(description="The board's id.")]
    ) -> AcceptBoardInvitationResult:
        view = await info.context.services.boards.accept(
            info.context.require_viewer(), lookup_id(board_id, "invitation")
        )
        return _success(view)

    @strawberry.mutation(
        description="Decline the viewer's pending invitation to a board; it is gone.",
        permission_classes=[IsAuthenticated],
    )
    async def decline_board_invitation(
        self, info: Info, board_id: Annotated[strawberry.ID, strawberry.argument(description="The board's id.")]
    ) -> DeclineBoardInvitationResult:
        declined = await info.context.services.boards.decline(
            info.context.require_viewer(), lookup_id(board_id, "invitation")
        )
        return DeclineBoardInvitationSuccess(board_id=strawberry.ID(str(declined)))

    @strawberry.mutation(
        description="Remove a member (OWNER), or leave a board (any member); the last OWNER cannot be removed.",
        permission_classes=[IsAuthenticated],
    )
    async def remove_board_member(
        self,
        info: Info,
        input: Annotated[RemoveBoardMemberInput, strawberry.argument(description="The board and the member.")],
    ) -> RemoveBoardMemberResult:
        view = await info.context.services.boards.remove_member(
            info.context.require_viewer(), lookup_id(input.board_id, "board"), lookup_id(input.user_id, "member")
        )
        return _success(view)
