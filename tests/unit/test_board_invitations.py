"""Board invitations in the use cases, with hand-written fakes: the work done never depends on accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.boards import Board, BoardMember, BoardRole
from domain.errors import NotFound, QuotaExceeded, RateLimited
from domain.invitations import BoardInvitation, InvitationRules, InvitationView
from domain.ports import RateBucket
from domain.use_cases import boards, invitations
from domain.use_cases.rate_limits import RateRule
from domain.users import Principal, Role, User

T0 = datetime(2026, 12, 1, tzinfo=UTC)
RULES = InvitationRules(ttl=timedelta(days=14), max_pending_per_board=2)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class Store:
    """Every repository of the fake unit of work, and the log of the calls they got."""

    def __init__(self) -> None:
        self.users: dict[uuid.UUID, User] = {}
        self.boards: dict[uuid.UUID, Board] = {}
        self.members: dict[tuple[uuid.UUID, uuid.UUID], BoardRole] = {}
        self.invitations: dict[tuple[uuid.UUID, str], BoardInvitation] = {}
        self.calls: list[str] = []

    def user(self, email: str) -> User:
        user = User(uuid.uuid4(), email, Role.USER, T0)
        self.users[user.id] = user
        return user

    def board(self, owner: User) -> uuid.UUID:
        board = Board(uuid.uuid4(), "Shared", owner.id, T0)
        self.boards[board.id] = board
        self.members[(board.id, owner.id)] = BoardRole.OWNER
        return board.id


class Users:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, user_id: uuid.UUID) -> User | None:
        self.s.calls.append("users.get")
        return self.s.users.get(user_id)

    async def hold(self, user_id: uuid.UUID) -> User | None:
        self.s.calls.append("users.hold")
        return self.s.users.get(user_id)

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]:
        self.s.calls.append("users.get_many")
        return [self.s.users[i] for i in ids if i in self.s.users]

    async def get_by_email(self, email: str) -> User | None:
        raise AssertionError("inviting must not look an account up by its address")


class Boards:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, board_id: uuid.UUID) -> Board | None:
        self.s.calls.append("boards.get")
        return self.s.boards.get(board_id)

    async def lock_members(self, board_id: uuid.UUID) -> list[BoardMember]:
        self.s.calls.append("boards.lock_members")
        return [BoardMember(b, u, r) for (b, u), r in self.s.members.items() if b == board_id]

    async def role_of(self, board_id: uuid.UUID, user_id: uuid.UUID) -> BoardRole | None:
        self.s.calls.append("boards.role_of")
        return self.s.members.get((board_id, user_id))

    async def set_member(self, board_id: uuid.UUID, user_id: uuid.UUID, role: BoardRole, at: datetime) -> None:
        self.s.calls.append("boards.set_member")
        self.s.members[(board_id, user_id)] = role


class Invitations:
    def __init__(self, store: Store) -> None:
        self.s = store

    def _open(self, now: datetime) -> dict[tuple[uuid.UUID, str], BoardInvitation]:
        return {k: v for k, v in self.s.invitations.items() if v.open_at(now)}

    async def put(self, invitation: BoardInvitation) -> None:
        self.s.calls.append("invitations.put")
        self.s.invitations[(invitation.board_id, invitation.email)] = invitation

    async def get(self, board_id: uuid.UUID, email: str) -> BoardInvitation | None:
        self.s.calls.append("invitations.get")
        return self.s.invitations.get((board_id, email))

    async def count_open(self, board_id: uuid.UUID, now: datetime) -> int:
        self.s.calls.append("invitations.count_open")
        return sum(1 for b, _ in self._open(now) if b == board_id)

    async def delete_expired(self, board_id: uuid.UUID, now: datetime) -> None:
        self.s.calls.append("invitations.delete_expired")
        for key, item in list(self.s.invitations.items()):
            if key[0] == board_id and not item.open_at(now):
                del self.s.invitations[key]

    async def take(self, board_id: uuid.UUID, email: str, now: datetime) -> BoardInvitation | None:
        self.s.calls.append("invitations.take")
        found = self._open(now).get((board_id, email))
        if found is not None:
            del self.s.invitations[(board_id, email)]
        return found

    async def open_for_email(self, email: str, now: datetime) -> list[InvitationView]:
        self.s.calls.append("invitations.open_for_email")
        return [InvitationView(v, self.s.boards[b].name) for (b, e), v in self._open(now).items() if e == email]


class Uow:
    def __init__(self, store: Store) -> None:
        self.users, self.boards, self.invitations = Users(store), Boards(store), Invitations(store)
        self.committed = False

    async def __aenter__(self) -> Uow:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass

    async def commit(self) -> None:
        self.committed = True


class FullLimiter:
    async def hit_all(self, buckets: Sequence[RateBucket]) -> int:
        return 42


def as_principal(user: User) -> Principal:
    return Principal(user.id, user.role)


async def invite(store: Store, owner: User, board_id: uuid.UUID, email: str, **kw: Any) -> boards.BoardView:
    return await boards.add_member(
        principal=as_principal(owner),
        board_id=board_id,
        email=email,
        role=kw.pop("role", BoardRole.EDITOR),
        uow=Uow(store),  # type: ignore[arg-type]
        clock=kw.pop("clock", Clock()),
        rules=RULES,
        **kw,
    )


async def test_an_account_and_an_unknown_address_get_the_same_work_and_answer() -> None:
    # given a board of its own for each of an account's address and an unknown one
    store = Store()
    owner, ana = store.user("owner@example.com"), store.user("ana@example.com")
    logs, views = [], []
    for email in (" ANA@example.com", "zed@example.com"):
        board_id = store.board(owner)
        store.calls.clear()
        # when the owner invites the address
        view = await invite(store, owner, board_id, email)
        logs.append(list(store.calls))
        views.append((view.role, view.board.name))
    # then the same calls ran in the same order, the answers match, and nobody became a member
    assert logs[0] == logs[1]
    assert views[0] == views[1] == (BoardRole.OWNER, "Shared")
    assert all(user != ana.id for (_, user) in store.members)
    assert {(i.email, i.email_as_typed) for i in store.invitations.values()} == {
        ("ana@example.com", "ANA@example.com"),
        ("zed@example.com", "zed@example.com"),
    }


async def test_the_cap_refuses_a_new_address_but_not_a_refresh() -> None:
    store = Store()
    owner = store.user("owner@example.com")
    board_id = store.board(owner)
    for email in ("a@example.com", "b@example.com"):
        await invite(store, owner, board_id, email)
    with pytest.raises(QuotaExceeded):
        await invite(store, owner, board_id, "c@example.com")
    await invite(store, owner, board_id, "A@example.com", role=BoardRole.VIEWER)
    assert store.invitations[(board_id, "a@example.com")].role is BoardRole.VIEWER
    # expired ones do not count
    later = Clock()
    later.at = T0 + RULES.ttl
    await invite(store, owner, board_id, "c@example.com", clock=later)
    assert sorted(e for _, e in store.invitations) == ["c@example.com"]


async def test_the_rate_limit_refuses_before_any_work() -> None:
    store = Store()
    owner = store.user("owner@example.com")
    board_id = store.board(owner)
    store.calls.clear()
    with pytest.raises(RateLimited) as refused:
        await invite(store, owner, board_id, "a@example.com", limiter=FullLimiter(), rate=RateRule(1, 60))
    assert refused.value.retry_after_seconds == 42
    assert store.calls == [] and store.invitations == {}


async def test_accept_makes_a_member_once_and_never_changes_a_members_role() -> None:
    store = Store()
    owner, ana, bob = store.user("owner@example.com"), store.user("ana@example.com"), store.user("bob@example.com")
    board_id = store.board(owner)
    await invite(store, owner, board_id, "Ana@Example.com", role=BoardRole.VIEWER)
    await invite(store, owner, board_id, "bob@example.com", role=BoardRole.OWNER)
    store.members[(board_id, bob.id)] = BoardRole.VIEWER  # joined meanwhile

    def accept(user: User) -> Any:
        return invitations.accept(principal=as_principal(user), board_id=board_id, uow=Uow(store), clock=Clock())  # type: ignore[arg-type]

    assert (await accept(ana)).role is BoardRole.VIEWER
    assert store.members[(board_id, ana.id)] is BoardRole.VIEWER
    with pytest.raises(NotFound):
        await accept(ana)
    assert (await accept(bob)).role is BoardRole.VIEWER
    with pytest.raises(NotFound):
        await accept(owner)
