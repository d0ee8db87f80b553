"""Board use cases (domain/use_cases/boards.py) with in-memory fakes: create, invite or re-role, remove, revoke.

tests/unit/test_board_invitations.py checks that inviting never depends on accounts (its calls);
these check the outcomes: rows, roles, the last OWNER, and that a refused change writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from domain.boards import Board, BoardRole
from domain.errors import Forbidden, InvalidInput, InvalidState, NotFound, QuotaExceeded
from domain.invitations import InvitationRules
from domain.use_cases import boards
from domain.use_cases.boards import BoardView
from domain.users import User
from tests.unit.fakes import Fakes, principal_of

TTL = timedelta(days=14)
RULES = InvitationRules(ttl=TTL, max_pending_per_board=2)
INVITEE = "  New.Person@Example.COM "
INVITEE_NORMALISED = "new.person@example.com"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


class Team:
    """A board with an owner, an editor and a viewer, each with an account."""

    def __init__(self, fakes: Fakes) -> None:
        self.owner = fakes.user(email="owner@example.com")
        self.editor = fakes.user(email="editor@example.com")
        self.viewer = fakes.user(email="viewer@example.com")
        self.stranger = fakes.user(email="stranger@example.com")
        self.board = fakes.board(self.owner, e=(self.editor, BoardRole.EDITOR), v=(self.viewer, BoardRole.VIEWER))


def roles(fakes: Fakes, board: Board) -> dict[uuid.UUID, BoardRole]:
    return {m.user_id: m.role for m in fakes.db.members.values() if m.board_id == board.id}


async def add_member(fakes: Fakes, who: User, board: Board, email: str, role: BoardRole, **kw: Any) -> BoardView:
    return await boards.add_member(
        principal=principal_of(who),
        board_id=board.id,
        email=email,
        role=role,
        uow=fakes.uow,
        clock=fakes.clock,
        rules=RULES,
        **kw,
    )


async def remove(fakes: Fakes, who: User, board: Board, user: User) -> BoardView:
    return await boards.remove_member(principal=principal_of(who), board_id=board.id, user_id=user.id, uow=fakes.uow)


# ------------------------------------------------------------------ create_board


async def test_creating_a_board_makes_its_creator_the_owner(fakes: Fakes) -> None:
    user = fakes.user()
    view = await boards.create_board(
        principal=principal_of(user), name="  Moodboard  ", uow=fakes.uow, clock=fakes.clock
    )
    assert (view.board.name, view.board.created_by, view.role) == ("Moodboard", user.id, BoardRole.OWNER)
    assert fakes.db.boards[view.board.id] == view.board and roles(fakes, view.board) == {user.id: BoardRole.OWNER}


@pytest.mark.parametrize("name", ["   ", "x" * 121, "a\x00b"])
async def test_a_bad_board_name_creates_nothing(fakes: Fakes, name: str) -> None:
    with pytest.raises(InvalidInput):
        await boards.create_board(principal=principal_of(fakes.user()), name=name, uow=fakes.uow, clock=fakes.clock)
    assert fakes.db.boards == {} and fakes.db.members == {}


# ------------------------------------------------------------------ add_member


async def test_inviting_a_new_address_records_an_invitation_and_no_member(fakes: Fakes) -> None:
    team = Team(fakes)
    view = await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.EDITOR)
    invitation = fakes.db.invitations[(team.board.id, INVITEE_NORMALISED)]
    assert (invitation.email_as_typed, invitation.role, invitation.invited_by) == (
        INVITEE.strip(),
        BoardRole.EDITOR,
        team.owner.id,
    )
    assert invitation.expires_at == fakes.clock.now() + TTL
    assert view == BoardView(team.board, BoardRole.OWNER) and len(roles(fakes, team.board)) == 3


async def test_inviting_someone_with_an_account_still_only_invites(fakes: Fakes) -> None:
    team = Team(fakes)
    await add_member(fakes, team.owner, team.board, team.stranger.email.upper(), BoardRole.VIEWER)
    assert team.stranger.id not in roles(fakes, team.board)
    assert (team.board.id, team.stranger.email) in fakes.db.invitations


async def test_inviting_again_refreshes_the_invitation(fakes: Fakes) -> None:
    team = Team(fakes)
    await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.VIEWER)
    fakes.clock.advance(3600)
    await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.EDITOR)
    [invitation] = fakes.db.invitations.values()
    assert (invitation.role, invitation.expires_at) == (BoardRole.EDITOR, fakes.clock.now() + TTL)


async def test_the_pending_cap_counts_open_invitations_only(fakes: Fakes) -> None:
    # given a board at its cap of two open invitations
    team = Team(fakes)
    for n in range(RULES.max_pending_per_board):
        await add_member(fakes, team.owner, team.board, f"guest{n}@example.com", BoardRole.VIEWER)
    # when a third address is invited, then it is refused and nothing is stored
    with pytest.raises(QuotaExceeded):
        await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.VIEWER)
    assert len(fakes.db.invitations) == RULES.max_pending_per_board
    # and once they expired, they are cleared and no longer count
    fakes.clock.advance(TTL.total_seconds())
    await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.VIEWER)
    assert list(fakes.db.invitations) == [(team.board.id, INVITEE_NORMALISED)]


async def test_an_owner_changes_a_members_role_by_their_address(fakes: Fakes) -> None:
    team = Team(fakes)
    await add_member(fakes, team.owner, team.board, team.viewer.email, BoardRole.EDITOR)
    assert roles(fakes, team.board)[team.viewer.id] is BoardRole.EDITOR and fakes.db.invitations == {}


async def test_the_last_owner_cannot_be_demoted_but_can_hand_over(fakes: Fakes) -> None:
    team = Team(fakes)
    with pytest.raises(InvalidInput) as refused:
        await add_member(fakes, team.owner, team.board, team.owner.email, BoardRole.EDITOR)
    assert refused.value.fields[0].field == "role" and roles(fakes, team.board)[team.owner.id] is BoardRole.OWNER
    # with a second owner the first may step down, and is told their new role
    await add_member(fakes, team.owner, team.board, team.editor.email, BoardRole.OWNER)
    view = await add_member(fakes, team.owner, team.board, team.owner.email, BoardRole.VIEWER)
    assert view.role is BoardRole.VIEWER and roles(fakes, team.board)[team.owner.id] is BoardRole.VIEWER


async def test_only_owners_manage_members_and_strangers_do_not_see_the_board(fakes: Fakes) -> None:
    team = Team(fakes)
    with pytest.raises(Forbidden):
        await add_member(fakes, team.editor, team.board, INVITEE, BoardRole.VIEWER)
    with pytest.raises(NotFound) as hidden:
        await add_member(fakes, team.stranger, team.board, INVITEE, BoardRole.VIEWER)
    assert hidden.value.entity == "board" and fakes.db.invitations == {}


@pytest.mark.parametrize("email", ["not an address", "a@b", "x\x00@example.com"])
async def test_a_malformed_address_is_refused(fakes: Fakes, email: str) -> None:
    team = Team(fakes)
    with pytest.raises(InvalidInput) as invalid:
        await add_member(fakes, team.owner, team.board, email, BoardRole.VIEWER)
    assert invalid.value.fields[0].field == "email" and fakes.db.invitations == {}


# ------------------------------------------------------------------ remove_member


async def test_an_owner_removes_a_member(fakes: Fakes) -> None:
    team = Team(fakes)
    view = await remove(fakes, team.owner, team.board, team.editor)
    assert view == BoardView(team.board, BoardRole.OWNER) and team.editor.id not in roles(fakes, team.board)


async def test_a_member_may_leave_but_not_remove_others(fakes: Fakes) -> None:
    team = Team(fakes)
    with pytest.raises(Forbidden):
        await remove(fakes, team.viewer, team.board, team.editor)
    view = await remove(fakes, team.viewer, team.board, team.viewer)
    assert view.role is BoardRole.VIEWER and set(roles(fakes, team.board)) == {team.owner.id, team.editor.id}


async def test_removing_a_non_member_or_from_an_unseen_board_is_not_found(fakes: Fakes) -> None:
    team = Team(fakes)
    with pytest.raises(NotFound) as member:
        await remove(fakes, team.owner, team.board, team.stranger)
    with pytest.raises(NotFound) as board:
        await remove(fakes, team.stranger, team.board, team.editor)
    assert (member.value.entity, board.value.entity) == ("member", "board") and len(roles(fakes, team.board)) == 3


async def test_the_last_owner_stays(fakes: Fakes) -> None:
    team = Team(fakes)
    with pytest.raises(InvalidState):
        await remove(fakes, team.owner, team.board, team.owner)
    fakes.join(team.board, team.editor, BoardRole.OWNER)
    await remove(fakes, team.owner, team.board, team.owner)
    assert roles(fakes, team.board) == {team.editor.id: BoardRole.OWNER, team.viewer.id: BoardRole.VIEWER}


# ------------------------------------------------------------------ revoke_invitation


async def test_an_owner_revokes_an_open_invitation_once(fakes: Fakes) -> None:
    team = Team(fakes)
    await add_member(fakes, team.owner, team.board, INVITEE, BoardRole.VIEWER)

    async def revoke(who: User) -> BoardView:
        return await boards.revoke_invitation(
            principal=principal_of(who), board_id=team.board.id, email=INVITEE.upper(), uow=fakes.uow, clock=fakes.clock
        )

    with pytest.raises(Forbidden):
        await revoke(team.editor)
    assert len(fakes.db.invitations) == 1
    assert (await revoke(team.owner)).role is BoardRole.OWNER and fakes.db.invitations == {}
    with pytest.raises(NotFound) as gone:
        await revoke(team.owner)
    assert gone.value.entity == "invitation"
