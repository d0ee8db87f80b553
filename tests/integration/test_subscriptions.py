"""The watchers behind the subscriptions, in process, on PostgreSQL and the memory broadcast.

What the e2e tests cannot pin down deterministically: events arriving late, twice or
overtaken by the database; access withdrawn mid-watch; token expiry on a fake clock; the
feed closing; no database read per event however many subscribers (events carry their
snapshot), and one per subscriber for an event without one; fresh DataLoaders for every delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import event

from domain.boards import Board, BoardRole
from domain.catalogue import ModelKind
from domain.errors import NotFound, Unauthenticated
from domain.events import GenerationChanged, user_channel
from domain.generations import Generation, GenerationStatus
from domain.repositories import Asset
from domain.use_cases import catalogue, watching
from domain.use_cases.generation_events import changed
from domain.use_cases.watching import FeedClosed, GenerationUpdate
from domain.users import Principal, Role
from graph.context import Context, Credentials
from graph.websocket import token_from_payload
from infrastructure.bootstrap import bind
from infrastructure.pubsub import BoundedBroadcast, event_to_dict
from infrastructure.pubsub.feed import BroadcastFeed
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.credits import grant_credits
from tests.fixtures.waiting import eventually
from tests.integration.statement_log import statements_of

pytestmark = pytest.mark.postgres

T = TypeVar("T")
S = GenerationStatus

MY_EVENTS = """subscription Mine {
  myGenerationEvents { previousStatus generation { id status outputs { contentType size } } }
}"""


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        return self.current


@dataclass
class World:
    client: GraphQLClient
    owner: Principal
    model_id: uuid.UUID

    @property
    def c(self) -> Any:
        return self.client.container

    def feed(self) -> BroadcastFeed:
        return BroadcastFeed(self.c.broadcast, self.c.uow)

    async def user(self, email: str) -> Principal:
        registered = await register_user(self.client, email)
        return Principal(uuid.UUID(registered["user"]["id"]), Role.USER)

    async def generation(self, board_id: uuid.UUID | None = None) -> Generation:
        now = datetime.now(UTC)
        generation = Generation(
            id=uuid.uuid4(),
            user_id=self.owner.user_id,
            model_id=self.model_id,
            prompt="a red fox",
            status=S.QUEUED,
            created_at=now,
            updated_at=now,
            board_id=board_id,
        )
        async with self.c.uow() as uow:
            await uow.generations.add(generation)
            await uow.commit()
        return generation

    async def move(self, generation: Generation, target: S, **fields: Any) -> Generation:
        """Commit a transition (as a worker would) without publishing it."""
        async with self.c.uow() as uow:
            current = await uow.generations.get(generation.id)
            assert current is not None
            if target is current.status and "progress" in fields:
                updated = await uow.generations.set_progress(generation.id, fields["progress"], datetime.now(UTC))
            else:
                updated = await uow.generations.transition(
                    generation.id, sources=frozenset({current.status}), target=target, at=datetime.now(UTC), **fields
                )
            await uow.commit()
        assert updated is not None
        return updated

    async def publish(self, generation: Generation, previous: S | None) -> GenerationChanged:
        event = changed(generation, previous, datetime.now(UTC))
        await self.c.publisher.publish(event)
        return event

    async def subscribers(self, count: int) -> None:
        """Until `count` subscribers are registered on the broadcast, besides the process's own
        listener of access revocations (infrastructure/access_revocations.py)."""
        stats = self.c.broadcast.stats
        await eventually(lambda: stats()["subscribers"] >= count + 1, what=f"{count} subscriber(s)", timeout=2)


@pytest.fixture
async def world(make_settings: SettingsFactory, clean_postgres: str) -> AsyncIterator[World]:
    async with running_app(make_settings(database_url=clean_postgres)) as client:
        owner = await register_user(client, "owner@example.com")
        c = client.container
        model = await catalogue.upsert_model(
            actor=None,
            slug="sim-test",
            name="Simulated",
            provider="simulated",
            kind=ModelKind.IMAGE,
            cost_credits=0,
            capabilities={},
            is_active=True,
            known_providers=frozenset({"simulated"}),
            uow=c.uow(),
            catalogue=c.catalogue,
        )
        yield World(client, Principal(uuid.UUID(owner["user"]["id"]), Role.USER), model.id)


async def take(stream: AsyncGenerator[T, None], timeout: float = 5.0) -> T:
    return await asyncio.wait_for(anext(stream), timeout)


def shown(update: GenerationUpdate) -> tuple[S, float, S | None]:
    return update.generation.status, update.generation.progress, update.previous_status


# ---------------------------------------------------------------- what a subscriber is shown


async def test_generation_updated_starts_with_the_current_state_and_only_moves_forward(world: World) -> None:
    # given a watch of a queued generation
    queued = await world.generation()
    updates = watching.watch_generation(
        principal=world.owner, generation_id=queued.id, uow=world.c.uow, feed=world.feed(), clock=FakeClock()
    )
    async with contextlib.aclosing(updates):
        assert shown(await take(updates)) == (S.QUEUED, 0.0, None)

        # when the worker's SUBMITTING overtakes the API's QUEUED event, and one event comes twice
        submitting = await world.move(queued, S.SUBMITTING)
        await world.publish(submitting, S.QUEUED)
        await world.publish(queued, None)  # late: older than what was shown
        await world.publish(submitting, S.QUEUED)  # a duplicate
        processing = await world.move(submitting, S.PROCESSING)
        await world.publish(processing, S.SUBMITTING)
        halfway = await world.move(processing, S.PROCESSING, progress=0.5)
        await world.publish(halfway, S.PROCESSING)
        await world.publish(processing, S.SUBMITTING)  # late again
        done = await world.move(halfway, S.SUCCEEDED, progress=1.0)
        await world.publish(done, S.PROCESSING)

        # then each state is shown once, in lifecycle order, and the watch ends after the final one
        seen = [shown(u) async for u in updates]
    assert seen == [
        (S.SUBMITTING, 0.0, S.QUEUED),
        (S.PROCESSING, 0.0, S.SUBMITTING),
        (S.PROCESSING, 0.5, S.PROCESSING),
        (S.SUCCEEDED, 1.0, S.PROCESSING),
    ]


async def test_an_event_overtaken_by_the_database_is_shown_as_it_announced(world: World) -> None:
    # given a watch, and a generation that already FAILED in the database
    queued = await world.generation()
    updates = watching.watch_my_generations(principal=world.owner, feed=world.feed(), clock=FakeClock())
    async with contextlib.aclosing(updates):
        pending = asyncio.ensure_future(take(updates))
        await world.subscribers(1)
        processing = await world.move(await world.move(queued, S.SUBMITTING), S.PROCESSING)
        failed = await world.move(processing, S.FAILED, error_code="BOOM", error_message="it broke")

        # when the PROCESSING event arrives after that, then the FAILED one
        await world.publish(processing, S.SUBMITTING)
        await world.publish(failed, S.PROCESSING)
        first, second = await pending, await take(updates)

    # then PROCESSING is shown without the ending that came later; FAILED with it
    assert shown(first) == (S.PROCESSING, 0.0, S.SUBMITTING)
    assert first.generation.error_code is None and first.generation.finished_at is None
    assert shown(second) == (S.FAILED, 0.0, S.PROCESSING)
    assert second.generation.error_code == "BOOM" and second.generation.prompt == "a red fox"


async def test_a_member_removed_from_the_board_stops_receiving(world: World) -> None:
    # given a board member watching the owner's generation
    member = await world.user("member@example.com")
    board = Board(id=uuid.uuid4(), name="team", created_by=world.owner.user_id, created_at=datetime.now(UTC))
    async with world.c.uow() as uow:
        await uow.boards.add(board)
        await uow.boards.set_member(board.id, world.owner.user_id, BoardRole.OWNER, datetime.now(UTC))
        await uow.boards.set_member(board.id, member.user_id, BoardRole.VIEWER, datetime.now(UTC))
        await uow.commit()
    queued = await world.generation(board_id=board.id)
    updates = watching.watch_generation(
        principal=member, generation_id=queued.id, uow=world.c.uow, feed=world.feed(), clock=FakeClock()
    )
    async with contextlib.aclosing(updates):
        assert shown(await take(updates)) == (S.QUEUED, 0.0, None)
        await world.publish(await world.move(queued, S.SUBMITTING), S.QUEUED)
        assert shown(await take(updates))[0] is S.SUBMITTING

        # when the member is removed, and the generation moves on
        async with world.c.uow() as uow:
            await uow.boards.remove_member(board.id, member.user_id)
            await uow.commit()
        await world.publish(await world.move(queued, S.PROCESSING), S.SUBMITTING)

        # then the watch ends with NotFound instead of showing it
        with pytest.raises(NotFound):
            await take(updates)


async def test_an_expired_token_receives_nothing_more(world: World) -> None:
    # given a watch whose token expires at a fixed time
    clock = FakeClock()
    queued = await world.generation()
    updates = watching.watch_generation(
        principal=world.owner,
        generation_id=queued.id,
        uow=world.c.uow,
        feed=world.feed(),
        clock=clock,
        expires_at=clock.current + timedelta(minutes=15),
    )
    async with contextlib.aclosing(updates):
        await take(updates)

        # when the clock passes the expiry and an event arrives
        clock.current += timedelta(minutes=15)
        await world.publish(await world.move(queued, S.SUBMITTING), S.QUEUED)

        # then the watch raises Unauthenticated instead of delivering it
        with pytest.raises(Unauthenticated):
            await take(updates)


async def test_the_feed_closing_ends_every_watch_with_feed_closed(world: World) -> None:
    # given watches on a broadcast of their own
    broadcast = BoundedBroadcast("memory://")
    await broadcast.connect()
    feed = BroadcastFeed(broadcast, world.c.uow)
    mine = watching.watch_my_generations(principal=world.owner, feed=feed, clock=FakeClock())
    money = watching.watch_credits(principal=world.owner, feed=feed, clock=FakeClock())
    pending = [asyncio.ensure_future(take(mine)), asyncio.ensure_future(take(money))]
    await eventually(lambda: broadcast.stats()["subscribers"] == 2, what="both watches to subscribe")

    # when the broadcast disconnects (the server is shutting down)
    await broadcast.disconnect()

    # then each watch ends with FeedClosed (the WebSocket layer turns it into 1012)
    for future in pending:
        with pytest.raises(FeedClosed):
            await future
    assert broadcast.stats()["subscribers"] == 0


async def test_delivering_events_to_many_subscribers_reads_no_generation(world: World) -> None:
    # given 20 subscribers of the same user on one process's feed (10 of all their generations,
    # 10 of one generation, each shown its current state already), and six committed changes
    queued = await world.generation()
    feed = world.feed()
    mine = [watching.watch_my_generations(principal=world.owner, feed=feed, clock=FakeClock()) for _ in range(10)]
    one = [
        watching.watch_generation(
            principal=world.owner, generation_id=queued.id, uow=world.c.uow, feed=feed, clock=FakeClock()
        )
        for _ in range(10)
    ]
    watches = [*mine, *one]
    pending = [asyncio.ensure_future(take(w)) for w in mine]
    assert {shown(await take(w)) for w in one} == {(S.QUEUED, 0.0, None)}
    await world.subscribers(20)
    submitting = await world.move(queued, S.SUBMITTING)
    processing = await world.move(submitting, S.PROCESSING)
    steps = [await world.move(processing, S.PROCESSING, progress=p) for p in (0.25, 0.5, 0.75)]
    done = await world.move(steps[-1], S.SUCCEEDED, progress=1.0)
    changes = [(submitting, S.QUEUED), (processing, S.SUBMITTING), *((s, S.PROCESSING) for s in steps)]
    changes.append((done, S.PROCESSING))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        # statements about this generation only: the app's embedded sweeps run on their own schedule
        if str(queued.id) in repr(parameters):
            statements.append(statement)

    event.listen(world.c.engine.sync_engine, "before_cursor_execute", count)
    try:
        # when the six events are published
        for generation, previous in changes:
            await world.publish(generation, previous)
        seen = [[shown(u)] for u in await asyncio.gather(*pending)] + [[] for _ in one]
        for _ in range(len(changes) - len(seen[0])):
            for shown_so_far, update in zip(seen, await asyncio.gather(*(take(w) for w in watches)), strict=True):
                shown_so_far.append(shown(update))
        for shown_so_far, update in zip(seen[10:], await asyncio.gather(*(take(w) for w in one)), strict=True):
            shown_so_far.append(shown(update))
    finally:
        event.remove(world.c.engine.sync_engine, "before_cursor_execute", count)
        for w in watches:
            await w.aclose()

    # then every subscriber was shown every change, and not one statement read the generation
    expected = [(g.status, g.progress, previous) for g, previous in changes]
    assert seen == [expected] * 20
    assert statements == []


async def test_an_event_without_a_snapshot_is_read_back_and_shown_as_announced(world: World) -> None:
    # given two watches, and a generation that already FAILED in the database
    queued = await world.generation()
    feed = world.feed()
    watches = [watching.watch_my_generations(principal=world.owner, feed=feed, clock=FakeClock()) for _ in range(2)]
    pending = [asyncio.ensure_future(take(w)) for w in watches]
    await world.subscribers(2)
    processing = await world.move(await world.move(queued, S.SUBMITTING), S.PROCESSING)
    await world.move(processing, S.FAILED, error_code="BOOM", error_message="it broke")
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM generations" in statement and str(queued.id) in repr(parameters):
            reads.append(statement)

    event.listen(world.c.engine.sync_engine, "before_cursor_execute", count)
    try:
        # when the PROCESSING event arrives in the format of a publisher older than snapshots
        thin = event_to_dict(changed(processing, S.SUBMITTING, datetime.now(UTC)), snapshot=False)
        await world.c.broadcast.publish(user_channel(world.owner.user_id), json.dumps(thin))
        updates = await asyncio.gather(*pending)
    finally:
        event.remove(world.c.engine.sync_engine, "before_cursor_execute", count)
        for w in watches:
            await w.aclose()

    # then each watch read the generation once and showed PROCESSING without the ending that came later
    assert "snapshot" not in thin
    assert [shown(u) for u in updates] == [(S.PROCESSING, 0.0, S.SUBMITTING)] * 2
    assert all(u.generation.prompt == "a red fox" and u.generation.error_code is None for u in updates)
    assert len(reads) == 2


async def test_a_long_subscription_does_not_accumulate_executor_memos(world: World) -> None:
    # given a subscription executed through the schema (graphql-core builds one executor per event)
    token = world.c.tokens.issue_access(world.owner.user_id, Role.USER).token
    context = Context(services=bind(world.c), credentials=Credentials(token))
    stream = await world.client.app.state.schema.subscribe(MY_EVENTS, context_value=context)
    processing = await world.move(await world.move(await world.generation(), S.SUBMITTING), S.PROCESSING)

    def memo_entries() -> int:
        return sum(1 for o in gc.get_objects() if type(o).__name__ == "CollectedFields")

    async with contextlib.aclosing(stream):
        first = asyncio.ensure_future(take(stream))
        await world.subscribers(1)
        await world.publish(processing, S.SUBMITTING)
        await first
        before = memo_entries()

        # when 100 more events are delivered
        for step in range(1, 101):
            moved = replace(processing, progress=step / 1000, updated_at=datetime.now(UTC))
            await world.publish(moved, S.PROCESSING)
            assert (await take(stream)).errors is None

        # then the memo of collected sub-fields did not grow with them (graphql-core 3.3.2 leak)
        assert memo_entries() - before < 10


async def test_credits_changed_delivers_the_balance_after_each_move(world: World) -> None:
    balances = watching.watch_credits(principal=world.owner, feed=world.feed(), clock=FakeClock())
    async with contextlib.aclosing(balances):
        first = asyncio.ensure_future(take(balances))
        await world.subscribers(1)
        for amount in (5, 7):
            await grant_credits(world.c, world.owner.user_id, amount)
        assert [(b.balance, b.available) for b in (await first, await take(balances))] == [(5, 5), (12, 12)]


# ---------------------------------------------------------------- the GraphQL layer


async def test_every_delivery_resolves_its_fields_with_fresh_loaders(world: World) -> None:
    # given a myGenerationEvents subscription that selects outputs, on one long-lived context
    token = world.c.tokens.issue_access(world.owner.user_id, Role.USER).token
    context = Context(services=bind(world.c), credentials=Credentials(token))
    stream = await world.client.app.state.schema.subscribe(MY_EVENTS, context_value=context)
    queued = await world.generation()
    async with contextlib.aclosing(stream):
        first = asyncio.ensure_future(take(stream))
        await world.subscribers(1)

        # when the generation is first seen without outputs, then finishes with one
        processing = await world.move(await world.move(queued, S.SUBMITTING), S.PROCESSING)
        await world.publish(processing, S.SUBMITTING)
        before = await first
        async with world.c.uow() as uow:
            await uow.generations.add_asset(
                Asset(
                    uuid.uuid4(),
                    queued.id,
                    "output",
                    0,
                    f"outputs/{queued.id}/0.png",
                    "image/png",
                    42,
                    datetime.now(UTC),
                )
            )
            await uow.commit()
        await world.publish(await world.move(processing, S.SUCCEEDED, progress=1.0), S.PROCESSING)
        after = await take(stream)

    # then the second delivery sees the new output: the loaders were not the first delivery's
    assert before.errors is None and after.errors is None
    assert before.data == {
        "myGenerationEvents": {
            "previousStatus": "SUBMITTING",
            "generation": {"id": str(queued.id), "status": "PROCESSING", "outputs": []},
        }
    }
    assert after.data["myGenerationEvents"]["generation"]["outputs"] == [{"contentType": "image/png", "size": 42}]


async def test_each_delivery_reads_on_one_connection_and_holds_none_between_events(world: World) -> None:
    # given a myGenerationEvents subscription that selects outputs (a loader batch per delivery)
    token = world.c.tokens.issue_access(world.owner.user_id, Role.USER).token
    context = Context(services=bind(world.c), credentials=Credentials(token))
    stream = await world.client.app.state.schema.subscribe(MY_EVENTS, context_value=context)
    pool = world.c.engine.sync_engine.pool
    async with contextlib.aclosing(stream):
        first = asyncio.ensure_future(take(stream))
        await world.subscribers(1)
        processing = await world.move(await world.move(await world.generation(), S.SUBMITTING), S.PROCESSING)
        await world.publish(processing, S.SUBMITTING)
        assert (await first).errors is None
        # then between events the subscription holds no connection (the app's own background work may hold one
        # for a moment: a connection the subscription kept would stay checked out)
        await eventually(lambda: pool.checkedout() == 0, what="every connection back in the pool", timeout=5)
        succeeded = await world.move(processing, S.SUCCEEDED, progress=1.0)
        # when the next event is delivered
        with statements_of(world.c.engine) as log:
            await world.publish(succeeded, S.PROCESSING)
            after = await take(stream)
        await log.settled()
    # then its reads took one connection, sent no BEGIN/ROLLBACK, and gave it back
    assert after.errors is None
    assert (log.checkouts, log.transaction_commands, len(log.statements)) == (1, [], 1), log.statements
    assert pool.checkedout() == 0


@pytest.mark.parametrize(
    ("payload", "token"),
    [
        ({"Authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer abc"}, "abc"),
        ({"token": "abc"}, "abc"),
        ({"headers": {"Authorization": "Bearer abc"}}, "abc"),
        ({"Authorization": ""}, None),
        ({"token": 42}, None),
        ({}, None),
    ],
)
def test_the_token_is_read_from_the_connection_init_payload(payload: dict[str, Any], token: str | None) -> None:
    assert token_from_payload(payload) == token
