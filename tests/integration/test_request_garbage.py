"""A GraphQL request leaves no reference cycles behind: its objects go by reference counting.

Cyclic garbage waits for the collector, and under load the collector then scans every
in-flight request's objects again and again (bench/generate.py measured it, before the
executor's helper cycle and a recursive closure in the cost limit were removed: figures in
docs/benchmarks.md, "No garbage cycles per request"). Reads by ids are checked too: an `IN` of
literal values left SQLAlchemy's parameter in a cycle (bench/teardown.py).
"""

from __future__ import annotations

import gc
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.sql.elements import BindParameter

from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    call_asgi,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

GENERATE = """
mutation Generate($input: GenerateInput!) {
  generate(input: $input) {
    __typename
    ... on GenerateSuccess { generation { id status prompt reservedCredits } }
    ... on Error { code message }
  }
}
"""
TYPENAME = "query T { __typename }"
# Only requests use these layers; the app's background work (its poll sweep, new Redis
# connections whose CLIENT SETINFO an older server refuses) may leave garbage of its own.
REQUEST_MODULES = ("graphql.", "strawberry.", "starlette.", "fastapi.", "graph.")
REFUSED = "query Refused { me { notAField } }"
# A read through the request's loaders (graph/loaders.py) and the board pages they batch.
READ = "query Read { me { id email } boardsConnection(first: 5) { edges { node { id name membersConnection(first: 3) { totalCount } } } } }"


@pytest.fixture
async def client(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str) -> AsyncIterator[GraphQLClient]:
    # PostgreSQL and Redis: generate's own path (no SQLAlchemy session, pipelined Redis)
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, simulated_mode="hang")
    async with running_app(settings) as c:
        yield c


async def post(client: GraphQLClient, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    """One request straight into the ASGI app (an HTTP client would add cycles of its own)."""
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    _, _, answer = await call_asgi(client.app, method="POST", path="/graphql", headers=headers, body=body)
    return json.loads(answer)


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects that only the cycle collector could free, made inside the block.

    Frozen objects are thawed first and last: the app's collection pacer freezes what is alive
    at its middle ticks (a request in flight among it), and a collection never looks at
    frozen objects, so a cycle frozen during the block would otherwise go unseen."""
    gc.unfreeze()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
        gc.unfreeze()
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_requests_leave_no_cyclic_garbage(client: GraphQLClient) -> None:
    # given a user who can start generations, and every document planned once
    session = await register_user(client, "tidy@example.com")
    await operator_grant(client, session["user"]["id"], 100)
    model_id = await operator_model(client, cost=1)
    token = session["accessToken"]
    variables = {"input": {"modelId": model_id, "prompt": "a tidy room [hang]"}}
    for query in (GENERATE, TYPENAME, REFUSED, READ):
        await post(client, token, query, variables)
    # when requests of each kind run
    with cyclic_garbage() as garbage:
        for _ in range(10):
            assert (await post(client, token, GENERATE, variables))["data"]["generate"][
                "__typename"
            ] == "GenerateSuccess"
            assert (await post(client, token, TYPENAME))["data"] == {"__typename": "Query"}
            assert "errors" in await post(client, token, REFUSED)
            read = await post(client, token, READ)
            assert "errors" not in read and read["data"]["me"]["email"] == "tidy@example.com", read
    # then nothing of the requests' handling (HTTP, GraphQL execution, our context) needed the
    # cycle collector (background work of the app, e.g. its poll sweep, may run meanwhile)
    kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in garbage)
    of_requests = {k: n for k, n in kinds.items() if k.startswith(REQUEST_MODULES)}
    assert of_requests == {}, kinds.most_common(12)


async def test_reads_by_ids_leave_no_parameter_in_a_cycle(client: GraphQLClient) -> None:
    # given ids of every kind a request's loaders read in batches
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with client.container.uow() as uow:
        repositories = (uow.users, uow.generations, uow.boards, uow.chunks)
        for repository in repositories:  # each statement built once before
            await repository.get_many(ids)
        # when each is read again
        with cyclic_garbage() as garbage:
            for repository in repositories:
                assert await repository.get_many(ids) == []
    # then none of their bound parameters needed the collector (an IN of literal values did: a cycle each)
    ours = [
        o for o in garbage if isinstance(o, BindParameter) and isinstance(o.value, list) and set(o.value) & set(ids)
    ]
    assert ours == []
