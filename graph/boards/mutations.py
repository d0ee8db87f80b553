"""createBoard, addBoardMember, removeBoardMember."""

from __future__ import annotations

import strawberry

from domain.use_cases import boards
from domain.use_cases.boards import BoardView
from graph.boards.types import (
    AddBoardMemberInput,
    AddBoardMemberResult,
    Board,
    BoardSuccess,
    CreateBoardInput,
    CreateBoardResult,
    RemoveBoardMemberInput,
    RemoveBoardMemberResult,
)
from graph.common.ids import lookup_id, parse_id
from graph.common.types import Forbidden, InvalidInput, InvalidState, NotFound
from graph.context import Info
from graph.errors import result_or_error
from graph.permissions import IsAuthenticated


def _success(view: BoardView) -> BoardSuccess:
    return BoardSuccess(board=Board.from_domain(view.board, view.role))


@strawberry.type
class BoardMutations:
    @strawberry.mutation(
        description="Create a board; the viewer becomes its OWNER.", permission_classes=[IsAuthenticated]
    )
    async def create_board(self, info: Info, input: CreateBoardInput) -> CreateBoardResult:
        c = info.context.container

        async def call() -> BoardSuccess:
            view = await boards.create_board(
                principal=info.context.require_viewer(), name=input.name, uow=c.uow(), clock=c.clock
            )
            return _success(view)

        return await result_or_error(call, InvalidInput)

    @strawberry.mutation(
        description="Add the account with this e-mail to a board, or change its role (OWNER only).",
        permission_classes=[IsAuthenticated],
    )
    async def add_board_member(self, info: Info, input: AddBoardMemberInput) -> AddBoardMemberResult:
        c = info.context.container

        async def call() -> BoardSuccess:
            view = await boards.add_member(
                principal=info.context.require_viewer(),
                board_id=parse_id(input.board_id, "boardId"),
                email=input.email,
                role=input.role,
                uow=c.uow(),
                clock=c.clock,
            )
            return _success(view)

        return await result_or_error(call, NotFound, Forbidden, InvalidInput)

    @strawberry.mutation(
        description="Remove a member (OWNER), or leave a board (any member); the last OWNER cannot be removed.",
        permission_classes=[IsAuthenticated],
    )
    async def remove_board_member(self, info: Info, input: RemoveBoardMemberInput) -> RemoveBoardMemberResult:
        c = info.context.container

        async def call() -> BoardSuccess:
            view = await boards.remove_member(
                principal=info.context.require_viewer(),
                board_id=lookup_id(input.board_id, "board"),
                user_id=lookup_id(input.user_id, "member"),
                uow=c.uow(),
            )
            return _success(view)

        return await result_or_error(call, NotFound, Forbidden, InvalidState)
