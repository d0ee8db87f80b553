"""Walking a list page by page while it changes, on PostgreSQL and SQLite (docs/clients.md, "Paging").

Generated: a user's generations (creation times that tie), a direction (`first`/`after` or
`last`/`before`), page sizes, and generations created between the pages at any moment (before,
among or after the ones already there). The documented behaviour: a walk returns every item
that existed for the whole walk exactly once, in the list's order (newest first, ties broken by
id), never a duplicate; an item created during the walk appears at most once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")  # every example writes rows of its own user
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'walks.db'}"


@pytest.fixture
async def uow(database_url: str, tmp_path: Path) -> AsyncIterator[SqlUnitOfWorkFactory]:
    if database_url.startswith("sqlite"):
        ensure_sqlite_dir(database_url)
        await upgrade(database_url)
    engine = create_engine(Settings(_env_file=None, database_url=database_url, data_dir=tmp_path))  # type: ignore[call-arg]
    yield SqlUnitOfWorkFactory(create_session_factory(engine))
    await engine.dispose()


walks = st.fixed_dictionaries(
    {
        # minutes after T0: few distinct values, so creation times tie
        "times": st.lists(st.integers(0, 5), max_size=14),
        "backward": st.booleans(),
        "sizes": st.lists(st.integers(1, 4), min_size=1, max_size=8),
        # after each page, generations created at these minutes (-1 and 6: beyond either end)
        "inserts": st.lists(st.lists(st.integers(-1, 6), max_size=3), max_size=8),
    }
)


def key(g: Generation) -> tuple[datetime, uuid.UUID]:
    return (g.created_at, g.id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(walk=walks)
async def test_a_walk_returns_every_lasting_item_once_in_order_whatever_is_created_meanwhile(
    uow: SqlUnitOfWorkFactory, walk: dict[str, object]
) -> None:
    times: list[int] = walk["times"]  # type: ignore[assignment]
    backward: bool = walk["backward"]  # type: ignore[assignment]
    sizes: list[int] = walk["sizes"]  # type: ignore[assignment]
    inserts: list[list[int]] = walk["inserts"]  # type: ignore[assignment]
    # given a user's generations
    user_id = uuid.uuid4()
    async with uow() as tx:
        await tx.users.add(User(user_id, f"{user_id}@example.com", Role.USER, T0))
        model = await tx.catalogue.save_model(
            AiModel(uuid.uuid4(), f"m-{user_id.hex[:12]}", "Model", "simulated", ModelKind.IMAGE, 0)
        )
        await tx.commit()

    async def create(minutes: list[int]) -> list[Generation]:
        made = []
        async with uow() as tx:
            for minute in minutes:
                at = T0 + timedelta(minutes=minute)
                g = Generation(uuid.uuid4(), user_id, model.id, "p", GenerationStatus.QUEUED, at, at)
                assert await tx.generations.add(g)
                made.append(g)
            await tx.commit()
        return made

    lasting = await create(times)
    created: set[uuid.UUID] = set()
    # when the list is walked page by page in one direction, with generations created between pages
    seen: list[Generation] = []
    cursor: Cursor | None = None
    for step in range(100):
        size = sizes[step % len(sizes)]
        request = PageRequest(size, before=cursor, backward=True) if backward else PageRequest(size, after=cursor)
        async with uow() as tx:
            page = await tx.generations.page(viewer_id=user_id, flt=GenerationFilter(), page=request)
        assert len(page.items) <= size
        assert [key(g) for g in page.items] == sorted((key(g) for g in page.items), reverse=True)
        seen = page.items + seen if backward else seen + page.items
        more = page.has_previous if backward else page.has_next
        assert not (page.has_next if backward else page.has_previous)  # the spec's answer for the other end
        if not more:
            break
        edge = page.items[0] if backward else page.items[-1]
        cursor = Cursor(edge.created_at, edge.id)
        if step < len(inserts):
            created |= {g.id for g in await create(inserts[step])}
    else:
        raise AssertionError("the walk did not end")
    # then every item that lasted the whole walk came exactly once, all in the list's order
    ids = [g.id for g in seen]
    assert len(ids) == len(set(ids))
    assert [key(g) for g in seen] == sorted((key(g) for g in seen), reverse=True)
    assert {g.id for g in lasting} <= set(ids)
    assert set(ids) <= {g.id for g in lasting} | created
