"""Several boards' pages in one statement answer exactly as one page per board, on PostgreSQL and SQLite.

Generated: boards with generations whose creation times tie, a viewer who is a member of some of
them, and requests for any of those boards (repeated, unknown ones too) with any size, any cursors
(`after`, `before`, both) and either direction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.boards import Board, BoardRole
from domain.catalogue import AiModel, ModelKind
from domain.cursors import Cursor
from domain.generations import Generation, GenerationStatus
from domain.pagination import PageRequest
from domain.repositories import GenerationFilter
from domain.users import Role, User
from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.uow import SqlUnitOfWorkFactory
from infrastructure.migrations.runner import ensure_sqlite_dir, upgrade
from infrastructure.settings import Settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BOARDS = 4


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        # the session's migrated database: every example writes rows of its own (fresh ids)
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'pages.db'}"


@pytest.fixture
async def uow(database_url: str, tmp_path: Path) -> AsyncIterator[SqlUnitOfWorkFactory]:
    if database_url.startswith("sqlite"):
        ensure_sqlite_dir(database_url)
        await upgrade(database_url)
    engine = create_engine(Settings(_env_file=None, database_url=database_url, data_dir=tmp_path))  # type: ignore[call-arg]
    yield SqlUnitOfWorkFactory(create_session_factory(engine))
    await engine.dispose()


boards_world = st.fixed_dictionaries(
    {
        # minutes after T0 of each board's generations: few distinct values, so times tie
        "times": st.lists(st.lists(st.integers(0, 3), max_size=7), min_size=BOARDS, max_size=BOARDS),
        "member_of": st.sets(st.integers(0, BOARDS - 1)),
        "requests": st.lists(
            st.tuples(
                st.integers(0, BOARDS),  # BOARDS: a board that does not exist
                st.integers(1, 5),
                st.none() | st.tuples(st.integers(-1, 4), st.uuids()),
                st.none() | st.tuples(st.integers(-1, 4), st.uuids()),  # before
                st.booleans(),  # backward (`last`)
            ),
            min_size=1,
            max_size=6,
        ),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=boards_world)
async def test_board_pages_in_one_statement_equal_one_page_per_board(
    uow: SqlUnitOfWorkFactory, world: dict[str, object]
) -> None:
    times: list[list[int]] = world["times"]  # type: ignore[assignment]
    member_of: set[int] = world["member_of"]  # type: ignore[assignment]
    viewer, owner = uuid.uuid4(), uuid.uuid4()
    board_ids = [uuid.uuid4() for _ in range(BOARDS)]
    async with uow() as tx:
        for user_id in (viewer, owner):
            await tx.users.add(User(user_id, f"{user_id}@example.com", Role.USER, T0))
        model = await tx.catalogue.save_model(
            AiModel(uuid.uuid4(), f"m-{viewer.hex[:12]}", "Model", "simulated", ModelKind.IMAGE, 0)
        )
        for i, board_id in enumerate(board_ids):
            await tx.boards.add(Board(board_id, f"board {i}", owner, T0))
            await tx.boards.set_member(board_id, owner, BoardRole.OWNER, T0)
            if i in member_of:
                await tx.boards.set_member(board_id, viewer, BoardRole.VIEWER, T0)
            for minute in times[i]:
                at = T0 + timedelta(minutes=minute)
                g = Generation(uuid.uuid4(), owner, model.id, "p", GenerationStatus.QUEUED, at, at, board_id=board_id)
                await tx.generations.add(g)
        await tx.commit()
    unknown = uuid.uuid4()
    pages = [
        (
            board_ids[b] if b < BOARDS else unknown,
            PageRequest(
                first,
                None if after is None else Cursor(T0 + timedelta(minutes=after[0]), after[1]),
                None if before is None else Cursor(T0 + timedelta(minutes=before[0]), before[1]),
                backward,
            ),
        )
        for b, first, after, before, backward in world["requests"]  # type: ignore[attr-defined]
    ]
    async with uow() as tx:
        together = await tx.generations.board_pages(viewer_id=viewer, pages=pages)
        one_by_one = [
            await tx.generations.page(viewer_id=viewer, flt=GenerationFilter(board_id=board_id), page=page)
            for board_id, page in pages
        ]
    assert together == one_by_one
    for (board_id, _), page in zip(pages, together, strict=True):
        if board_id not in [board_ids[i] for i in member_of]:
            assert page.items == [] and not page.has_next and not page.has_previous
