"""boards, board, myBoardInvitations."""

from __future__ import annotations

import strawberry

from domain.errors import NotFound
from domain.use_cases import invitations, reads
from graph.boards.types import Board, BoardInvitation
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class BoardQueries:
    @strawberry.field(description="Boards the viewer belongs to.", permission_classes=[IsAuthenticated])
    async def boards(self, info: Info) -> list[Board]:
        viewer = info.context.require_viewer()
        c = info.context.container
        boards = await reads.list_boards(principal=viewer, uow=c.uow())
        out: list[Board] = []
        for board in boards:
            members = await info.context.loaders.members(board.id)
            role = next(m.role for m in members if m.user_id == viewer.user_id)
            out.append(Board.from_domain(board, role))
        return out

    @strawberry.field(description="One board the viewer belongs to, or null.", permission_classes=[IsAuthenticated])
    async def board(self, info: Info, id: strawberry.ID) -> Board | None:
        try:
            board, role = await reads.get_board(
                principal=info.context.require_viewer(),
                board_id=lookup_id(id, "board"),
                uow=info.context.container.uow(),
            )
        except NotFound:
            return None
        return Board.from_domain(board, role)

    @strawberry.field(
        description="Pending invitations to boards for the viewer's e-mail address, oldest first.",
        permission_classes=[IsAuthenticated],
    )
    async def my_board_invitations(self, info: Info) -> list[BoardInvitation]:
        c = info.context.container
        pending = await invitations.my_invitations(principal=info.context.require_viewer(), uow=c.uow(), clock=c.clock)
        return [BoardInvitation.from_domain(v.invitation, v.board_name) for v in pending]
