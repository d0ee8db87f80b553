"""The invitee's use cases (domain/use_cases/invitations.py) with in-memory fakes: list, accept, decline."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from domain.boards import Board, BoardRole
from domain.errors import NotFound
from domain.invitations import BoardInvitation
from domain.use_cases import invitations
from domain.users import User
from tests.unit.fakes import Fakes, principal_of

TTL = timedelta(days=14)
EMAIL = "guest@example.com"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def invite(fakes: Fakes, board: Board, email: str = EMAIL, role: BoardRole = BoardRole.EDITOR) -> BoardInvitation:
    now = fakes.clock.now()
    invitation = BoardInvitation(board.id, email, email.upper(), role, board.created_by, now, now + TTL)
    fakes.db.invitations[(board.id, email)] = invitation
    return invitation


def role_of(fakes: Fakes, board: Board, user: User) -> BoardRole | None:
    member = fakes.db.members.get((board.id, user.id))
    return member.role if member else None


async def test_my_invitations_are_the_open_ones_for_my_address(fakes: Fakes) -> None:
    # given two boards inviting my address, one long ago (expired), and one inviting someone else
    owner, me = fakes.user(), fakes.user(email=EMAIL)
    old, fresh, other = fakes.board(owner), fakes.board(owner), fakes.board(owner)
    invite(fakes, old)
    fakes.clock.advance(TTL.total_seconds())
    mine = invite(fakes, fresh)
    invite(fakes, other, "someone@example.com")
    # when I list mine, then I see only the open one, with its board's name
    listed = await invitations.my_invitations(principal=principal_of(me), uow=fakes.uow, clock=fakes.clock)
    assert [(v.invitation, v.board_name) for v in listed] == [(mine, fresh.name)]


async def test_an_unknown_account_has_no_invitations(fakes: Fakes) -> None:
    board = fakes.board(fakes.user())
    invite(fakes, board)
    ghost = principal_of(User(uuid.uuid4(), EMAIL, fakes.user().role, fakes.clock.now()))
    assert await invitations.my_invitations(principal=ghost, uow=fakes.uow, clock=fakes.clock) == []


async def test_accepting_makes_me_a_member_with_the_invited_role_once(fakes: Fakes) -> None:
    owner, me = fakes.user(), fakes.user(email=EMAIL)
    board = fakes.board(owner)
    invite(fakes, board, role=BoardRole.VIEWER)
    view = await invitations.accept(principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    assert (view.board, view.role) == (board, BoardRole.VIEWER) and role_of(fakes, board, me) is BoardRole.VIEWER
    assert fakes.db.invitations == {}
    with pytest.raises(NotFound) as used:
        await invitations.accept(principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    assert used.value.entity == "invitation"


async def test_an_invitation_never_changes_a_members_role(fakes: Fakes) -> None:
    # given the board's only OWNER, invited (again) as a viewer
    owner = fakes.user(email=EMAIL)
    board = fakes.board(owner)
    invite(fakes, board, role=BoardRole.VIEWER)
    # when they accept, then they stay OWNER and the invitation is used up
    view = await invitations.accept(principal=principal_of(owner), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    assert view.role is BoardRole.OWNER and role_of(fakes, board, owner) is BoardRole.OWNER
    assert fakes.db.invitations == {}


async def test_someone_else_or_a_late_acceptance_finds_no_invitation(fakes: Fakes) -> None:
    owner, me, other = fakes.user(), fakes.user(email=EMAIL), fakes.user()
    board = fakes.board(owner)
    invite(fakes, board)
    with pytest.raises(NotFound):
        await invitations.accept(principal=principal_of(other), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    fakes.clock.advance(TTL.total_seconds())
    with pytest.raises(NotFound):
        await invitations.accept(principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    assert role_of(fakes, board, me) is None and role_of(fakes, board, other) is None


async def test_declining_drops_the_invitation_without_joining(fakes: Fakes) -> None:
    owner, me = fakes.user(), fakes.user(email=EMAIL)
    board = fakes.board(owner)
    invite(fakes, board)
    declined = await invitations.decline(
        principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock
    )
    assert declined == board.id and fakes.db.invitations == {} and role_of(fakes, board, me) is None
    with pytest.raises(NotFound):
        await invitations.decline(principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock)


async def test_a_failed_commit_keeps_the_invitation_and_makes_no_member(fakes: Fakes) -> None:
    owner, me = fakes.user(), fakes.user(email=EMAIL)
    board = fakes.board(owner)
    invitation = invite(fakes, board)
    fakes.db.fail_next_commit = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await invitations.accept(principal=principal_of(me), board_id=board.id, uow=fakes.uow, clock=fakes.clock)
    assert fakes.db.invitations == {(board.id, EMAIL): invitation} and role_of(fakes, board, me) is None
