"""GraphQL types of the boards area."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain import boards as db
from domain import invitations as di
from domain.cursors import CursorCodec
from domain.pagination import Page
from graph.auth.types import User
from graph.common.connections import After, Before, First, Last, cursor_of, page_info, page_request
from graph.common.node import Node
from graph.common.types import (
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    PageInfo,
    QuotaExceeded,
    RateLimited,
)
from graph.context import Info

if TYPE_CHECKING:
    from graph.generations.types import GenerationConnection

strawberry.enum(db.BoardRole, name="BoardRole", description="OWNER manages, EDITOR generates, VIEWER reads.")
BoardRole = db.BoardRole


@strawberry.type(description="A member of a board.")
class BoardMember:
    role: BoardRole
    user_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def user(self, info: Info) -> User:
        found = await info.context.loaders.user(self.user_id)
        assert found is not None, "members always reference an existing user"
        return User.from_domain(found)


@strawberry.type(description="One member in a page of a board's members: the account (`node`) and its role.")
class BoardMemberEdge:
    cursor: str
    role: BoardRole
    user_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The member's account.")
    async def node(self, info: Info) -> User:
        found = await info.context.loaders.user(self.user_id)
        assert found is not None, "members always reference an existing user"
        return User.from_domain(found)


@strawberry.type(description="A page of a board's members, the latest to join first.")
class BoardMemberConnection:
    edges: list[BoardMemberEdge]
    page_info: PageInfo
    board_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="How many members the board has (one indexed count).")
    async def total_count(self, info: Info) -> int:
        return await info.context.loaders.member_counts_by_board.load(self.board_id)

    @classmethod
    def from_page(cls, board_id: uuid.UUID, page: Page[db.Membership], cursors: CursorCodec) -> BoardMemberConnection:
        edges = [
            BoardMemberEdge(cursor=cursor_of(m, cursors), role=m.member.role, user_id=m.member.user_id)
            for m in page.items
        ]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]), board_id=board_id)


@strawberry.type(
    description="A pending invitation to a board for an e-mail address: whoever signs in with that address "
    "may accept it (and becomes a member with `role`) or decline it, until `expiresAt`."
)
class BoardInvitation:
    board_id: strawberry.ID
    board_name: str
    email: str = strawberry.field(description="The address as the inviter typed it.")
    role: BoardRole
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_domain(cls, invitation: di.BoardInvitation, board_name: str) -> BoardInvitation:
        return cls(
            board_id=strawberry.ID(str(invitation.board_id)),
            board_name=board_name,
            email=invitation.email_as_typed,
            role=invitation.role,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )


@strawberry.type(description="A shared space: its members see its generations.")
class Board(Node):
    name: str
    my_role: BoardRole
    board_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="Every member, in the order they joined (not paged: `membersConnection` pages them).",
        deprecation_reason="Use `membersConnection`, which pages a board's members.",
    )
    async def members(self, info: Info) -> list[BoardMember]:
        members = await info.context.loaders.members(self.board_id)
        return [BoardMember(role=m.role, user_id=m.user_id) for m in members]

    @strawberry.field(description="The board's members, the latest to join first, in pages.")
    async def members_connection(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> BoardMemberConnection:
        request = page_request(info.context.services.cursors, first, after, last, before)
        page = await info.context.loaders.member_pages_by_board.load((self.board_id, request))
        return BoardMemberConnection.from_page(self.board_id, page, info.context.services.cursors)

    @strawberry.field(description="Pending invitations, oldest first: listed to the board's OWNERs, empty for others.")
    async def invitations(self, info: Info) -> list[BoardInvitation]:
        if not self.my_role.can_manage:
            return []
        pending = await info.context.loaders.invitations(self.board_id)
        return [BoardInvitation.from_domain(i, self.name) for i in pending]

    @strawberry.field(description="Generations in this board, newest first (`first` <= 100).")
    async def generations(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> Annotated[GenerationConnection, strawberry.lazy("graph.generations.types")]:
        from graph.generations.types import GenerationConnection

        cursors = info.context.services.cursors
        page = await info.context.loaders.board_generations(
            info.context.require_viewer(), self.board_id, page_request(cursors, first, after, last, before)
        )
        return GenerationConnection.from_page(page, cursors)

    @classmethod
    def from_domain(cls, board: db.Board, role: db.BoardRole) -> Board:
        return cls(id=strawberry.ID(str(board.id)), name=board.name, my_role=role, board_id=board.id)


@strawberry.type
class BoardEdge:
    node: Board
    cursor: str


@strawberry.type(description="A page of the boards the viewer belongs to, newest first.")
class BoardConnection:
    edges: list[BoardEdge]
    page_info: PageInfo

    @strawberry.field(description="How many boards the viewer belongs to (one indexed count).")
    async def total_count(self, info: Info) -> int:
        return await info.context.services.boards.count(info.context.require_viewer())

    @classmethod
    def from_page(cls, page: Page[db.MemberBoard], cursors: CursorCodec) -> BoardConnection:
        edges = [BoardEdge(node=Board.from_domain(b.board, b.role), cursor=cursor_of(b, cursors)) for b in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


@strawberry.input(description="A new board; the creator becomes its OWNER.")
class CreateBoardInput:
    name: str = strawberry.field(description="The board's name: non-empty text.")


@strawberry.input(description="Invite an e-mail address with a role, or change the role of the member using it.")
class AddBoardMemberInput:
    board_id: strawberry.ID = strawberry.field(description="The board's id (OWNER only).")
    email: str = strawberry.field(description="The invitee's e-mail address; they join when they accept.")
    role: BoardRole = strawberry.field(description="The role to give: OWNER, EDITOR or VIEWER.")


@strawberry.input(description="Remove a member; the last OWNER cannot be removed.")
class RemoveBoardMemberInput:
    board_id: strawberry.ID = strawberry.field(description="The board's id.")
    user_id: strawberry.ID = strawberry.field(description="The member's user id.")


@strawberry.input(description="Cancel a board's pending invitation for an e-mail address.")
class RevokeBoardInvitationInput:
    board_id: strawberry.ID = strawberry.field(description="The board's id.")
    email: str = strawberry.field(description="The e-mail address the invitation was sent to.")


@strawberry.type(description="The invitation was declined (and is gone).")
class DeclineBoardInvitationSuccess:
    board_id: strawberry.ID


@strawberry.type
class BoardSuccess:
    board: Board


@strawberry.input(description="Give a board a new name (OWNER only).")
class RenameBoardInput:
    board_id: strawberry.ID = strawberry.field(description="The board's id.")
    name: str = strawberry.field(description="The new name: non-empty text.")


@strawberry.type(description="The board is deleted; its generations stay their starters', detached from it.")
class DeleteBoardSuccess:
    board_id: strawberry.ID


@strawberry.type(description="The viewer is no longer a member of the board.")
class LeaveBoardSuccess:
    board_id: strawberry.ID


CreateBoardResult = Annotated[BoardSuccess | InvalidInput, strawberry.union("CreateBoardResult")]
RenameBoardResult = Annotated[BoardSuccess | NotFound | Forbidden | InvalidInput, strawberry.union("RenameBoardResult")]
DeleteBoardResult = Annotated[DeleteBoardSuccess | NotFound | Forbidden, strawberry.union("DeleteBoardResult")]
LeaveBoardResult = Annotated[LeaveBoardSuccess | NotFound | InvalidState, strawberry.union("LeaveBoardResult")]
AddBoardMemberResult = Annotated[
    BoardSuccess | NotFound | Forbidden | InvalidInput | RateLimited | QuotaExceeded,
    strawberry.union("AddBoardMemberResult"),
]
RemoveBoardMemberResult = Annotated[
    BoardSuccess | NotFound | Forbidden | InvalidState, strawberry.union("RemoveBoardMemberResult")
]
RevokeBoardInvitationResult = Annotated[
    BoardSuccess | NotFound | Forbidden | InvalidInput, strawberry.union("RevokeBoardInvitationResult")
]
AcceptBoardInvitationResult = Annotated[BoardSuccess | NotFound, strawberry.union("AcceptBoardInvitationResult")]
DeclineBoardInvitationResult = Annotated[
    DeclineBoardInvitationSuccess | NotFound, strawberry.union("DeclineBoardInvitationResult")
]
