"""boards, board, myBoardInvitations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import NotFound
from graph.boards.types import Board, BoardInvitation
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class BoardQueries:
    @strawberry.field(description="Boards the viewer belongs to.", permission_classes=[IsAuthenticated])
    async def boards(self, info: Info) -> list[Board]:
        viewer = info.context.require_viewer()
        boards = await info.context.services.boards.mine(viewer)
        # One batch for every board's members (the viewer's role is among them).
        all_members = await info.context.loaders.members_by_board.load_many([board.id for board in boards])
        out: list[Board] = []
        for board, members in zip(boards, all_members, strict=True):
            role = next(m.role for m in members if m.user_id == viewer.user_id)
            out.append(Board.from_domain(board, role))
        return out

    @strawberry.field(description="One board the viewer belongs to, or null.", permission_classes=[IsAuthenticated])
    async def board(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The board's id.")]
    ) -> Board | None:
        try:
            board, role = await info.context.services.boards.get(info.context.require_viewer(), lookup_id(id, "board"))
        except NotFound:
            return None
        return Board.from_domain(board, role)

    @strawberry.field(
        description="Pending invitations to boards for the viewer's e-mail address, oldest first.",
        permission_classes=[IsAuthenticated],
    )
    async def my_board_invitations(self, info: Info) -> list[BoardInvitation]:
        pending = await info.context.services.boards.my_invitations(info.context.require_viewer())
        return [BoardInvitation.from_domain(v.invitation, v.board_name) for v in pending]
