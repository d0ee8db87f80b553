"""The resolver path on PostgreSQL: one connection per request, no transaction for a read, batched lookups.

What one request sends is captured on the app's real engine (tests/integration/statement_log.py)
with compiled reads off, so every read below runs through the resolvers and their loaders.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.generations import Generation, GenerationStatus
from domain.media import THUMBNAIL_KIND, THUMBNAIL_TYPE, ThumbnailState, thumbnail_key
from domain.repositories import Asset
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    admin_token,
    operator_model,
    register_user,
    running_app,
)
from tests.fixtures.waiting import eventually
from tests.integration.board_world import CREATE_BOARD
from tests.integration.statement_log import statements_of

pytestmark = pytest.mark.postgres

# bench/read.py's history page.
HISTORY = (
    "query LatestGenerations($first: Int!) { generations(first: $first) { edges { node { id status prompt"
    " createdAt model { slug costCredits } outputs { id kind size } } } } }"
)
# The demo's grid: each output's thumbnail and its URL.
GRID = (
    "query Grid($first: Int!) { generations(first: $first) { edges { node { id status outputs { id kind width "
    "height thumbnailStatus url thumbnail { id kind contentType width height url } } } } } }"
)
BOARD = """
query BoardPage($id: ID!) {
  board(id: $id) {
    id name myRole
    members { role user { email } }
    generations(first: 20) { edges { node { id prompt model { slug } outputs { id kind } inputs { id } } } }
  }
}
"""
BOARDS = """
query Boards {
  boards { id name members { role user { email } } generations(first: 5) { edges { node { id outputs { id } } } } }
}
"""
PAGE_SIZE = 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Seeded:
    me: GraphQLClient
    board_ids: list[str]


@pytest.fixture
async def client(clean_postgres: str, make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(database_url=clean_postgres, compiled_reads=False, simulated_mode="hang")
    async with running_app(settings) as c:
        yield c


async def seed_generations(
    client: GraphQLClient, user_id: uuid.UUID, model_id: uuid.UUID, count: int, board_id: uuid.UUID | None = None
) -> None:
    async with client.container.uow() as uow:
        for i in range(count):
            at = T0 + timedelta(minutes=i)
            g = Generation(
                id=uuid.uuid4(),
                user_id=user_id,
                model_id=model_id,
                prompt=f"harbour {i}",
                status=GenerationStatus.SUCCEEDED,
                created_at=at,
                updated_at=at,
                board_id=board_id,
            )
            await uow.generations.add(g)
            for position in range(2):
                # Each output has its thumbnail (an asset of the same generation, never listed in `outputs`).
                output = Asset(
                    uuid.uuid4(), g.id, "output", position, f"outputs/{user_id}/{g.id}/{position}.png", "image/png",
                    10, at, width=1024, height=768, thumbnail_state=ThumbnailState.READY.value,
                )  # fmt: skip
                thumbnail = Asset(
                    uuid.uuid4(), g.id, THUMBNAIL_KIND, position, thumbnail_key(output.object_key), THUMBNAIL_TYPE,
                    4, at, width=512, height=384, source_id=output.id,
                )  # fmt: skip
                await uow.generations.add_asset(output)
                await uow.generations.add_asset(thumbnail)
        await uow.commit()


@pytest.fixture
async def seeded(client: GraphQLClient) -> Seeded:
    model_id = uuid.UUID(await operator_model(client, cost=0, name="Harbour model"))
    user = await register_user(client, "pages@example.com")
    me = client.as_user(user["accessToken"])
    user_id = uuid.UUID(user["user"]["id"])
    board_ids = []
    for name in ("Harbours", "Lighthouses", "Dunes"):
        board = (await me.execute(CREATE_BOARD, {"name": name}))["data"]["createBoard"]["board"]
        board_ids.append(board["id"])
    await seed_generations(client, user_id, model_id, PAGE_SIZE + 5)
    for board_id in board_ids:
        await seed_generations(client, user_id, model_id, 4, board_id=uuid.UUID(board_id))
    # warm: the account check and the catalogue snapshot are per process, not per request
    await me.execute(HISTORY, {"first": 1})
    return Seeded(me, board_ids)


async def test_the_history_page_takes_one_connection_and_no_transaction(client: GraphQLClient, seeded: Seeded) -> None:
    # when the history page is read through the resolvers
    with statements_of(client.container.engine) as log:
        body = await seeded.me.execute(HISTORY, {"first": PAGE_SIZE})
    await log.settled()
    # then the whole answer came from one pooled connection, without BEGIN/ROLLBACK,
    # in a page statement and one batch for all the outputs (models come from the catalogue)
    edges = body["data"]["generations"]["edges"]
    assert len(edges) == PAGE_SIZE and all(len(e["node"]["outputs"]) == 2 for e in edges)
    assert log.checkouts == 1
    assert log.transaction_commands == []
    assert len(log.statements) == 2, log.statements


async def test_thumbnails_on_the_history_page_take_no_statement_of_their_own(
    client: GraphQLClient, seeded: Seeded
) -> None:
    # when the grid (the history page with each output's thumbnail and both URLs) is read through the resolvers
    with statements_of(client.container.engine) as log:
        body = await seeded.me.execute(GRID, {"first": PAGE_SIZE})
    await log.settled()
    # then every output shows its own thumbnail, and the statements are the history page's two:
    # the thumbnails came in the outputs' batch
    edges = body["data"]["generations"]["edges"]
    assert len(edges) == PAGE_SIZE
    for edge in edges:
        outputs = edge["node"]["outputs"]
        assert [o["kind"] for o in outputs] == ["OUTPUT", "OUTPUT"]
        for output in outputs:
            thumbnail = output["thumbnail"]
            assert output["thumbnailStatus"] == "READY"
            assert (thumbnail["kind"], thumbnail["contentType"], thumbnail["width"]) == ("THUMBNAIL", "image/webp", 512)
            assert thumbnail["id"] != output["id"] and thumbnail["url"] != output["url"]
    assert log.checkouts == 1
    assert log.transaction_commands == []
    assert len(log.statements) == 2, log.statements


async def test_a_board_page_takes_one_connection_and_batches_its_lookups(client: GraphQLClient, seeded: Seeded) -> None:
    with statements_of(client.container.engine) as log:
        body = await seeded.me.execute(BOARD, {"id": seeded.board_ids[0]})
    await log.settled()
    board = body["data"]["board"]
    assert board["myRole"] == "OWNER" and [m["user"]["email"] for m in board["members"]] == ["pages@example.com"]
    assert len(board["generations"]["edges"]) == 4
    assert log.checkouts == 1
    assert log.transaction_commands == []
    # board with the viewer's role, members, their users, the board's page, outputs, inputs
    assert len(log.statements) == 6, log.statements


async def test_nested_pages_of_every_board_do_not_grow_with_the_boards(client: GraphQLClient, seeded: Seeded) -> None:
    with statements_of(client.container.engine) as log:
        body = await seeded.me.execute(BOARDS)
    await log.settled()
    boards = body["data"]["boards"]
    assert len(boards) == 3 and all(len(b["generations"]["edges"]) == 4 for b in boards)
    assert log.checkouts == 1
    assert log.transaction_commands == []
    # boards, members, users, the pages of all three boards, their outputs
    assert len(log.statements) == 5, "\n---\n".join(s[:90] for s in log.statements)


async def test_a_write_still_runs_in_a_transaction(client: GraphQLClient, seeded: Seeded) -> None:
    # the capture sees BEGIN and COMMIT when they are sent (so their absence above means something)
    with statements_of(client.container.engine) as log:
        await seeded.me.execute(CREATE_BOARD, {"name": "Cliffs"})
    await log.settled()
    assert [c.split()[0].upper().rstrip(";") for c in log.transaction_commands] == ["BEGIN", "COMMIT"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ticks=st.integers(min_value=0, max_value=60))
async def test_a_request_cancelled_at_any_point_gives_its_connection_back(
    client: GraphQLClient, seeded: Seeded, ticks: int
) -> None:
    # given a history page in flight (a client that went away), cancelled after `ticks` loop turns
    engine = client.container.engine
    request = asyncio.create_task(seeded.me.execute(HISTORY, {"first": PAGE_SIZE}))
    for _ in range(ticks):
        await asyncio.sleep(0)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    # then no connection stays checked out, and the next request is answered in full
    await eventually(lambda: engine.sync_engine.pool.checkedout() == 0, what="the connection is back in the pool")
    body = await seeded.me.execute(HISTORY, {"first": PAGE_SIZE})
    assert len(body["data"]["generations"]["edges"]) == PAGE_SIZE


ADMIN_PAGE = "query AdminPage { me { id role } adminSettings { key } }"


async def test_admin_settings_read_on_the_request_connection(client: GraphQLClient) -> None:
    # given an admin
    admin = client.as_user(await admin_token(client))
    # when a query reads the viewer and the admin settings
    with statements_of(client.container.engine) as log:
        body = await admin.execute(ADMIN_PAGE)
    await log.settled()
    # then both came from the request's one connection, with no transaction (no write unit of work)
    assert body["data"]["me"]["role"] == "ADMIN" and isinstance(body["data"]["adminSettings"], list)
    assert log.checkouts == 1
    assert log.transaction_commands == []
