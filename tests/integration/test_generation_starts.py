"""GenerationStarter: one atomic write per start, on PostgreSQL (stored function) and SQLite (unit of work).

Every test runs against each store: the PostgreSQL function, the unit-of-work starter on
PostgreSQL, and the unit-of-work starter on SQLite (the embedded default).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from domain.chunks import Chunk, ChunkStatus
from domain.credits import CreditBalance, LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.repositories import GenerationStarter, StartStatus
from domain.use_cases.generation_credits import reservation_for
from infrastructure.db.engine import create_engine, open_driver_pool
from infrastructure.db.generation_starts import PgGenerationStarter, SqlGenerationStarter
from tests.fixtures.app import GraphQLClient, SettingsFactory, operator_model, running_app
from tests.fixtures.services import asyncpg_to_sqlalchemy, empty_tables
from tests.fixtures.users import add_user


def now() -> datetime:
    """The time of the call, not of the module's import: the app's embedded sweeps take over
    QUEUED generations that look abandoned (older than the submit lease) and expire those past
    their deadline, and a slow suite reaches these tests minutes after collection."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    client: GraphQLClient
    starter: GenerationStarter
    dialect: str

    @property
    def container(self) -> Any:
        return self.client.container

    async def user(self, *, credits: int = 0, account: bool = True) -> uuid.UUID:
        return (await add_user(self.container, account=account, credits=credits, created_at=now())).id

    async def chunk(self, user_id: uuid.UUID, status: ChunkStatus = ChunkStatus.READY) -> uuid.UUID:
        chunk_id = uuid.uuid4()
        chunk = Chunk(
            chunk_id, user_id, f"user_chunks/{user_id}/{chunk_id}.png", "in.png", "image/png", 3, status, now()
        )
        async with self.container.uow() as uow:
            await uow.chunks.add(chunk)
            await uow.commit()
        return chunk_id

    async def count(self, sql: str, **params: Any) -> int:
        async with self.container.uow() as uow:
            return int((await uow.session.execute(text(sql), params)).scalar_one())

    async def account(self, user_id: uuid.UUID) -> tuple[CreditBalance, CreditBalance]:
        async with self.container.uow() as uow:
            return await uow.credits.balance(user_id), await uow.credits.ledger_totals(user_id)


def new_generation(user_id: uuid.UUID, model_id: uuid.UUID, cost: int, **extra: Any) -> Generation:
    at = now()
    return Generation(
        id=uuid.uuid4(),
        user_id=user_id,
        model_id=model_id,
        prompt="a lighthouse at dusk",
        status=GenerationStatus.QUEUED,
        created_at=at,
        updated_at=at,
        params={"steps": 4},
        reserved_credits=cost,
        deadline_at=at + timedelta(minutes=5),
        **extra,
    )


STORES = [
    pytest.param("postgres-function", marks=pytest.mark.postgres),
    pytest.param("postgres-unit-of-work", marks=pytest.mark.postgres),
    "sqlite-unit-of-work",
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(store name, PostgreSQL DSN or None); resolved before the event loop runs the async fixtures."""
    name: str = request.param
    return name, request.getfixturevalue("postgres_dsn") if name.startswith("postgres") else None


@pytest.fixture
async def world(store: tuple[str, str | None], make_settings: SettingsFactory) -> AsyncIterator[World]:
    name, dsn = store
    settings = make_settings()
    if dsn is not None:
        await empty_tables(dsn)
        settings = make_settings(database_url=asyncpg_to_sqlalchemy(dsn))
    async with running_app(settings) as client:
        c = client.container
        starter: GenerationStarter = c.starter if name == "postgres-function" else SqlGenerationStarter(c.uow)
        assert isinstance(c.starter, PgGenerationStarter if dsn else SqlGenerationStarter)
        yield World(client, starter, c.engine.dialect.name)


async def model(world: World, cost: int) -> uuid.UUID:
    return uuid.UUID(await operator_model(world.client, cost=cost))


async def test_a_start_writes_the_generation_one_reservation_and_the_account(world: World) -> None:
    # given a user with 25 credits and a model costing 10
    user_id = await world.user(credits=25)
    generation = new_generation(user_id, await model(world, 10), 10)
    # when it starts
    outcome = await world.starter.start(generation, reservation_for(generation))
    # then the generation is there, QUEUED, with one reserve row, and the account says so
    assert outcome.status is StartStatus.STARTED
    assert outcome.generation_id == generation.id
    assert outcome.account == CreditBalance(25, 10)
    async with world.container.uow() as uow:
        stored = await uow.generations.get(generation.id)
    assert stored is not None and stored.status is GenerationStatus.QUEUED
    assert (stored.params, stored.reserved_credits, stored.deadline_at) == ({"steps": 4}, 10, generation.deadline_at)
    account, totals = await world.account(user_id)
    assert account == totals == CreditBalance(25, 10)
    assert await world.count("select count(*) from credit_ledger where kind = 'reserve'") == 1


async def test_insufficient_credits_write_nothing_and_report_the_balance_seen(world: World) -> None:
    user_id = await world.user(credits=5)
    generation = new_generation(user_id, await model(world, 10), 10)

    outcome = await world.starter.start(generation, reservation_for(generation))

    assert outcome.status is StartStatus.INSUFFICIENT
    assert outcome.account == CreditBalance(5, 0)
    assert await world.count("select count(*) from generations") == 0
    assert await world.count("select count(*) from credit_ledger where kind = 'reserve'") == 0


async def test_a_model_repriced_or_deactivated_since_the_catalogue_was_read_is_not_started(world: World) -> None:
    # given a user with credits, a model priced 10 that now costs 12, and one deactivated since
    user_id = await world.user(credits=50)
    repriced = await model(world, 10)
    await operator_model(world.client, slug=await slug_of(world, repriced), cost=12)
    retired = await model(world, 10)
    await operator_model(world.client, slug=await slug_of(world, retired), cost=10, active=False)
    # when each is started at the cost the caller read before
    outcomes = []
    for model_id in (repriced, retired):
        generation = new_generation(user_id, model_id, 10)
        outcomes.append((await world.starter.start(generation, reservation_for(generation))).status)
    # then neither starts and nothing is written or reserved
    assert outcomes == [StartStatus.MODEL_CHANGED, StartStatus.MODEL_CHANGED]
    assert await world.count("select count(*) from generations") == 0
    assert await world.count("select count(*) from credit_ledger where kind = 'reserve'") == 0
    assert await world.account(user_id) == (CreditBalance(50, 0), CreditBalance(50, 0))


async def slug_of(world: World, model_id: uuid.UUID) -> str:
    async with world.container.uow() as uow:
        found = await uow.catalogue.get_model(model_id)
    assert found is not None
    return found.slug


async def test_a_user_without_an_account_cannot_reserve_but_may_start_free_models(world: World) -> None:
    user_id = await world.user(account=False)
    paid = new_generation(user_id, await model(world, 3), 3)
    free = new_generation(user_id, await model(world, 0), 0)

    refused = await world.starter.start(paid, reservation_for(paid))
    started = await world.starter.start(free, None)

    assert (refused.status, refused.account) == (StartStatus.INSUFFICIENT, CreditBalance(0, 0))
    assert (started.status, started.account) == (StartStatus.STARTED, None)
    assert await world.count("select count(*) from credit_ledger") == 0


async def test_a_replayed_key_returns_the_first_generation_even_with_the_credits_spent(world: World) -> None:
    # given a first start with key k1 that spent every credit
    user_id = await world.user(credits=10)
    model_id = await model(world, 10)
    first = new_generation(user_id, model_id, 10, idempotency_key="k1")
    assert (await world.starter.start(first, reservation_for(first))).status is StartStatus.STARTED
    # when the same key comes again (a new id, as every request makes one)
    again = replace(first, id=uuid.uuid4())
    outcome = await world.starter.start(again, reservation_for(again))
    # then it is the first generation, and nothing more is reserved
    assert (outcome.status, outcome.generation_id) == (StartStatus.REPLAYED, first.id)
    account, totals = await world.account(user_id)
    assert account == totals == CreditBalance(10, 10)
    assert await world.count("select count(*) from generations") == 1


async def test_inputs_must_still_be_ready_chunks_of_the_user(world: World) -> None:
    user_id = await world.user(credits=100)
    stranger = await world.user()
    model_id = await model(world, 1)
    ready = [await world.chunk(user_id), await world.chunk(user_id)]
    pending = await world.chunk(user_id, ChunkStatus.PENDING)
    foreign = await world.chunk(stranger)

    refused = []
    for bad in (pending, foreign, uuid.uuid4()):
        generation = new_generation(user_id, model_id, 1, input_chunk_ids=[ready[0], bad])
        refused.append((await world.starter.start(generation, reservation_for(generation))).status)
    generation = new_generation(user_id, model_id, 1, input_chunk_ids=[ready[1], ready[0]])
    started = await world.starter.start(generation, reservation_for(generation))

    assert refused == [StartStatus.INPUTS_CHANGED] * 3
    assert started.status is StartStatus.STARTED
    async with world.container.uow() as uow:
        inputs = await uow.generations.inputs_of([generation.id])
    assert inputs[generation.id] == [ready[1], ready[0]]  # in the order given
    assert await world.count("select count(*) from generations") == 1
    account, totals = await world.account(user_id)
    assert account == totals == CreditBalance(100, 1)


async def test_the_board_must_still_let_the_user_generate(world: World) -> None:
    from domain.boards import Board, BoardRole

    # given a board with an editor, a viewer and a former member (who left before the start)
    editor, viewer, former = [await world.user(credits=100) for _ in range(3)]
    board = Board(uuid.uuid4(), "Shared", editor, now())
    async with world.container.uow() as uow:
        await uow.boards.add(board)
        for user_id, role in ((editor, BoardRole.OWNER), (viewer, BoardRole.VIEWER), (former, BoardRole.EDITOR)):
            await uow.boards.set_member(board.id, user_id, role, now())
        await uow.boards.remove_member(board.id, former)
        await uow.commit()
    model_id = await model(world, 5)
    # when each starts a generation in the board (past any earlier check of the use case)
    outcomes = {}
    for name, user_id in (("viewer", viewer), ("former", former), ("editor", editor)):
        generation = new_generation(user_id, model_id, 5, board_id=board.id)
        outcomes[name] = (await world.starter.start(generation, reservation_for(generation))).status
    # then only the member who may generate starts one; the others write nothing
    assert outcomes == {
        "viewer": StartStatus.BOARD_CHANGED,
        "former": StartStatus.BOARD_CHANGED,
        "editor": StartStatus.STARTED,
    }
    assert await world.count("select count(*) from generations") == 1
    for user_id, held in ((viewer, 0), (former, 0), (editor, 5)):
        account, totals = await world.account(user_id)
        assert account == totals == CreditBalance(100, held)


async def test_concurrent_starts_of_one_user_stay_within_the_balance(world: World) -> None:
    # given 20 credits, and 60 starts at once: 30 without a key, 30 over 3 keys
    user_id = await world.user(credits=20)
    model_id = await model(world, 1)
    generations = [
        new_generation(user_id, model_id, 1, idempotency_key=None if i % 2 == 0 else f"key-{i % 3}") for i in range(60)
    ]
    # when they race
    outcomes = await asyncio.gather(*(world.starter.start(g, reservation_for(g)) for g in generations))
    # then no more than 20 started, each key at most once, and the ledger matches the account
    statuses = [o.status for o in outcomes]
    started = statuses.count(StartStatus.STARTED)
    assert started == 20
    assert statuses.count(StartStatus.INSUFFICIENT) + statuses.count(StartStatus.REPLAYED) == 40
    account, totals = await world.account(user_id)
    assert account == totals == CreditBalance(20, 20)
    keyed = await world.count(
        "select count(distinct idempotency_key) from generations where idempotency_key is not null"
    )
    assert keyed == await world.count("select count(*) from generations where idempotency_key is not null") <= 3
    assert await world.count("select count(*) from generations") == 20
    replayed_ids = {o.generation_id for o in outcomes if o.status is StartStatus.REPLAYED}
    stored = {g.id for g in generations if g.idempotency_key} & {o.generation_id for o in outcomes}
    assert replayed_ids <= stored


async def test_concurrent_free_starts_with_one_key_make_one_generation(world: World) -> None:
    # no account row: nothing to lock, the unique key alone decides
    user_id = await world.user(account=False)
    model_id = await model(world, 0)
    generations = [new_generation(user_id, model_id, 0, idempotency_key="once") for _ in range(20)]

    outcomes = await asyncio.gather(*(world.starter.start(g, None) for g in generations))

    assert [o.status for o in outcomes].count(StartStatus.STARTED) == 1
    assert len({o.generation_id for o in outcomes}) == 1
    assert await world.count("select count(*) from generations") == 1


async def test_a_reservation_must_be_a_positive_reserve(world: World) -> None:
    user_id = await world.user(credits=10)
    generation = new_generation(user_id, await model(world, 1), 1)
    wrong = replace(reservation_for(generation), kind=LedgerKind.GRANT)  # type: ignore[type-var]

    with pytest.raises(ValueError, match="positive amount"):
        await world.starter.start(generation, wrong)
    assert await world.count("select count(*) from generations") == 0


@pytest.mark.postgres
async def test_the_start_pool_releases_connections_without_a_reset_round_trip(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    # given the driver-level pool of a PostgreSQL engine, one connection
    engine = create_engine(make_settings(database_url=postgres_url))
    pool = await open_driver_pool(engine, 1)
    try:
        async with pool.acquire() as connection:
            await connection.execute("SET statement_timeout = '1234ms'")
        # when the connection comes back from the pool
        async with pool.acquire() as connection:
            seen = await connection.fetchval("SHOW statement_timeout")
    finally:
        await pool.close()
        await engine.dispose()
    # then no RESET ALL ran in between (asyncpg's default sends one on every release)
    assert seen == "1234ms"
