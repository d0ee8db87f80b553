"""boards, board, myBoardInvitations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import NotFound
from graph.boards.types import Board, BoardConnection, BoardInvitation
from graph.common.connections import After, Before, First, Last, page_request
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class BoardQueries:
    @strawberry.field(
        description="Boards the viewer belongs to, oldest first (not paged: `boardsConnection` pages them).",
        permission_classes=[IsAuthenticated],
        deprecation_reason="Use `boardsConnection`, which pages the viewer's boards.",
    )
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

    @strawberry.field(
        description="Boards the viewer belongs to, newest first, in pages (`first` <= 100).",
        permission_classes=[IsAuthenticated],
    )
    async def boards_connection(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> BoardConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page = await services.boards.page(info.context.require_viewer(), request)
        return BoardConnection.from_page(page, services.cursors)

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
