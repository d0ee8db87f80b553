"""Read use cases and the access rules behind them (domain/use_cases/reads.py, access.py) with in-memory fakes."""

from __future__ import annotations

import uuid

import pytest

from domain.boards import BoardRole
from domain.cursors import Cursor
from domain.errors import Forbidden, NotFound
from domain.generations import Generation, GenerationStatus
from domain.pagination import PageRequest
from domain.repositories import GenerationFilter
from domain.use_cases import access, reads
from domain.users import Principal, Role, User
from tests.unit.fakes import Fakes, principal_of

S = GenerationStatus
ALL = GenerationFilter()
PAGE = PageRequest(10)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


class Scene:
    """A board with an owner, an editor and a viewer; a stranger and an admin outside it; one generation each."""

    def __init__(self, fakes: Fakes) -> None:
        self.owner, self.editor, self.viewer = fakes.user(balance=100), fakes.user(), fakes.user()
        self.stranger, self.admin = fakes.user(balance=100), fakes.user(role=Role.ADMIN)
        self.board = fakes.board(self.owner, e=(self.editor, BoardRole.EDITOR), v=(self.viewer, BoardRole.VIEWER))
        model = fakes.model()
        self.in_board = fakes.generation(self.owner, model, S.QUEUED, board_id=self.board.id)
        fakes.clock.advance(1)
        self.private = fakes.generation(self.owner, model, S.SUCCEEDED)
        fakes.clock.advance(1)
        self.strangers = fakes.generation(self.stranger, model, S.FAILED)


async def readable(fakes: Fakes, who: User, generation: Generation | None) -> Generation:
    async with fakes.uow as uow:
        return await access.readable_generation(uow, generation, principal_of(who))


async def controllable(fakes: Fakes, who: User, generation: Generation) -> Generation:
    async with fakes.uow as uow:
        return await access.controllable_generation(uow, generation, principal_of(who))


def ids(generations: list[Generation]) -> list[uuid.UUID]:
    return [g.id for g in generations]


# ------------------------------------------------------------------ access


async def test_owner_admin_and_every_board_member_read_a_board_generation(fakes: Fakes) -> None:
    scene = Scene(fakes)
    for who in (scene.owner, scene.admin, scene.editor, scene.viewer):
        assert (await readable(fakes, who, scene.in_board)).id == scene.in_board.id
    with pytest.raises(NotFound):
        await readable(fakes, scene.stranger, scene.in_board)


async def test_a_private_generation_is_its_owners_and_admins_only(fakes: Fakes) -> None:
    scene = Scene(fakes)
    assert (await readable(fakes, scene.admin, scene.private)).id == scene.private.id
    for who in (scene.editor, scene.viewer, scene.stranger):
        with pytest.raises(NotFound):
            await readable(fakes, who, scene.private)
    with pytest.raises(NotFound):
        await readable(fakes, scene.owner, None)


async def test_viewers_read_but_do_not_control_board_generations(fakes: Fakes) -> None:
    scene = Scene(fakes)
    for who in (scene.owner, scene.editor, scene.admin):
        assert (await controllable(fakes, who, scene.in_board)).id == scene.in_board.id
    with pytest.raises(Forbidden):
        await controllable(fakes, scene.viewer, scene.in_board)
    with pytest.raises(NotFound):
        await controllable(fakes, scene.stranger, scene.in_board)


# ------------------------------------------------------------------ generations


async def test_get_generation_applies_the_read_rule(fakes: Fakes) -> None:
    scene = Scene(fakes)
    got = await reads.get_generation(
        principal=principal_of(scene.viewer), generation_id=scene.in_board.id, uow=fakes.uow
    )
    assert got == fakes.db.generations[scene.in_board.id]
    for who, missing in ((scene.viewer, scene.private.id), (scene.owner, uuid.uuid4())):
        with pytest.raises(NotFound):
            await reads.get_generation(principal=principal_of(who), generation_id=missing, uow=fakes.uow)


async def test_a_member_lists_their_own_and_their_boards_generations_newest_first(fakes: Fakes) -> None:
    scene = Scene(fakes)
    editors_own = fakes.generation(scene.editor, fakes.model(), S.QUEUED)
    listed = await reads.list_generations(principal=principal_of(scene.editor), flt=ALL, page=PAGE, uow=fakes.uow)
    assert ids(listed.items) == [editors_own.id, scene.in_board.id] and not listed.has_next


async def test_filtering_by_board_needs_membership(fakes: Fakes) -> None:
    scene = Scene(fakes)
    on_board = GenerationFilter(board_id=scene.board.id)
    member = await reads.list_generations(principal=principal_of(scene.viewer), flt=on_board, page=PAGE, uow=fakes.uow)
    outsider = await reads.list_generations(
        principal=principal_of(scene.stranger), flt=on_board, page=PAGE, uow=fakes.uow
    )
    assert ids(member.items) == [scene.in_board.id]
    assert (outsider.items, outsider.has_next) == ([], False)


async def test_filters_by_status_and_pages_with_a_cursor(fakes: Fakes) -> None:
    scene = Scene(fakes)
    owner = principal_of(scene.owner)
    finished = GenerationFilter(statuses=frozenset({S.SUCCEEDED}))
    only = await reads.list_generations(principal=owner, flt=finished, page=PAGE, uow=fakes.uow)
    assert ids(only.items) == [scene.private.id]
    first = await reads.list_generations(principal=owner, flt=ALL, page=PageRequest(1), uow=fakes.uow)
    last = first.items[-1]
    rest = await reads.list_generations(
        principal=owner, flt=ALL, page=PageRequest(1, Cursor(last.created_at, last.id)), uow=fakes.uow
    )
    assert (ids(first.items), first.has_next) == ([scene.private.id], True)
    assert (ids(rest.items), rest.has_next) == ([scene.in_board.id], False)


# ------------------------------------------------------------------ boards


async def test_a_member_sees_the_board_with_their_role_and_others_do_not(fakes: Fakes) -> None:
    scene = Scene(fakes)
    board, role = await reads.get_board(principal=principal_of(scene.viewer), board_id=scene.board.id, uow=fakes.uow)
    assert (board, role) == (scene.board, BoardRole.VIEWER)
    for who, board_id in ((scene.stranger, scene.board.id), (scene.admin, scene.board.id), (scene.owner, uuid.uuid4())):
        with pytest.raises(NotFound):
            await reads.get_board(principal=principal_of(who), board_id=board_id, uow=fakes.uow)


async def test_list_boards_shows_the_users_boards_oldest_first(fakes: Fakes) -> None:
    scene = Scene(fakes)
    fakes.clock.advance(1)
    newer = fakes.board(scene.editor)
    assert await reads.list_boards(principal=principal_of(scene.editor), uow=fakes.uow) == [scene.board, newer]
    assert await reads.list_boards(principal=principal_of(scene.stranger), uow=fakes.uow) == []


# ------------------------------------------------------------------ chunks


async def test_chunks_are_their_owners_only(fakes: Fakes) -> None:
    owner, other = fakes.user(), fakes.user()
    chunk = fakes.chunk(owner)
    me: Principal = principal_of(owner)
    assert await reads.get_chunk(principal=me, chunk_id=chunk.id, uow=fakes.uow) == chunk
    for who, chunk_id in ((principal_of(other), chunk.id), (me, uuid.uuid4())):
        with pytest.raises(NotFound):
            await reads.get_chunk(principal=who, chunk_id=chunk_id, uow=fakes.uow)


async def test_list_chunks_pages_the_users_chunks_newest_first(fakes: Fakes) -> None:
    owner, other = fakes.user(), fakes.user()
    made = []
    for _ in range(3):
        made.append(fakes.chunk(owner))
        fakes.clock.advance(1)
    fakes.chunk(other)
    page = await reads.list_chunks(principal=principal_of(owner), page=PageRequest(2), uow=fakes.uow)
    assert [c.id for c in page.items] == [made[2].id, made[1].id] and page.has_next
