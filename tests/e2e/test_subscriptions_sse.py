"""GraphQL over Server-Sent Events over real sockets: two `genhub serve` replicas, a worker, a scheduler, Redis.

The processes share the test PostgreSQL and Redis. Clients: curl (`curl -N`), the graphql-sse
npm client run by node, and httpx streaming (tests/e2e/sse_support.py). Before the test causes
an event itself it waits until Redis shows the server's SUBSCRIBE (PUBSUB NUMSUB).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.events import GenerationChanged, user_channel
from domain.generations import Generation, GenerationStatus
from domain.users import Role
from infrastructure.pubsub.codec import encode_event
from tests.e2e.sse_support import SseStream, open_stream
from tests.e2e.subscription_support import (
    Account,
    Api,
    Server,
    app_container,
    base_env,
    empty_stores,
    running_stack,
    seed_catalogue,
    seed_settings,
    wait_for_numsub,
)
from tests.e2e.test_subscriptions import tokens_with_ttl
from tests.fixtures.credits import grant_credits
from tests.fixtures.node_tools import NodeTools
from tests.fixtures.services import TABLES

# (the first test also waits for the module's stack: two servers, a worker and a scheduler starting)
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).parent / "js" / "sse_client.mjs"
MAX_STREAMS = 3
MY_EVENTS = "subscription MyEvents { myGenerationEvents { previousStatus generation { id status progress } } }"
UPDATED = """subscription Updated($id: ID!) {
  generationUpdated(id: $id) { previousStatus generation { id status progress outputs { contentType } } }
}"""
#: Events of about 48 KB: a few MB of them outgrow any socket buffer the kernel gives a connection.
BULKY = "subscription Bulky { myGenerationEvents { generation { id progress params } } }"
BATCHES = 12
CREDITS = "subscription Credits { creditsChanged { balance reserved available } }"
LOGOUT = "mutation Logout { logoutEverywhere { __typename } }"


@dataclass
class Stack:
    a: Server
    b: Server
    redis_url: str
    container: Any
    api_a: Api
    api_b: Api
    model_id: str = ""

    async def user(self, credits: int = 0) -> Account:
        account = await self.api_a.register("sse")
        if credits:
            await grant_credits(self.container, account.user_id, credits)
        return account


@pytest.fixture(scope="module")
async def stack(postgres_dsn: str, postgres_url: str, redis_url: str, tmp_path_factory: Any) -> AsyncIterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("sse")
    await empty_stores(postgres_dsn, redis_url, TABLES)
    settings = seed_settings(postgres_url, redis_url, tmp)
    await seed_catalogue(settings)
    env = base_env(
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        LOCAL_STORAGE_PATH=str(tmp / "chunks"),
        DATA_DIR=str(tmp / "data"),
        SIMULATED_STEPS="3",
        SIMULATED_STEP_SECONDS="0.3",
        POLL_INTERVAL_SECONDS="0.5",
        SSE_KEEPALIVE_SECONDS="0.5",
        SSE_WRITE_TIMEOUT_SECONDS="1",
        SSE_MAX_STREAMS_PER_USER=str(MAX_STREAMS),
    )
    async with (
        running_stack(env, tmp, ("sse-a", "sse-b"), timeout=120) as (servers, _worker, _scheduler),
        app_container(settings) as container,
    ):
        stack = Stack(servers[0], servers[1], redis_url, container, Api(servers[0].http_url), Api(servers[1].http_url))
        probe = await stack.user()
        stack.model_id = await stack.api_a.model_id(probe.token)
        yield stack
        await stack.api_a.aclose()
        await stack.api_b.aclose()


def statuses(results: list[dict[str, Any]], field: str) -> list[str]:
    """The distinct consecutive statuses of a stream's results."""
    seen: list[str] = []
    for result in results:
        status = result["data"][field]["generation"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
    return seen


def succeeded(field: str) -> Any:
    return lambda s: statuses(s.results, field)[-1:] == ["SUCCEEDED"]


# ---------------------------------------------------------------- lifecycle and fan-out


async def test_curl_follows_a_generation_started_on_the_other_replica_and_its_disconnect_frees_redis(
    stack: Stack,
) -> None:
    # given curl streaming myGenerationEvents from replica A
    curl = shutil.which("curl")
    assert curl is not None, "curl is needed"
    user = await stack.user(credits=50)
    body = json.dumps({"query": MY_EVENTS})
    args = [curl, "-sN", "-H", "Accept: text/event-stream", "-H", "Content-Type: application/json"]
    args += ["-H", f"Authorization: Bearer {user.token}", "--data", body, f"{stack.a.http_url}/graphql"]
    process = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
    assert process.stdout is not None
    channel = user_channel(user.user_id)
    await wait_for_numsub(stack.redis_url, channel, 1)

    # when the generation is started through replica B (and run by the worker process)
    generation_id = await stack.api_b.generate(user.token, stack.model_id)

    # then replica A streams its whole lifecycle as `next` events
    seen = b""
    async with asyncio.timeout(20):
        while b'"SUCCEEDED"' not in seen:
            seen += await process.stdout.read(4096)
    text = seen.decode()
    assert text.startswith(":"), "the stream opens with a comment"
    datas = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert statuses(datas, "myGenerationEvents") == ["QUEUED", "SUBMITTING", "PROCESSING", "SUCCEEDED"]
    assert {d["data"]["myGenerationEvents"]["generation"]["id"] for d in datas} == {generation_id}
    assert all(e in ("event: next", "") for e in (line for line in text.splitlines() if line.startswith("event")))

    # and when curl goes away, the server releases the Redis subscription at once
    process.terminate()
    await process.wait()
    await wait_for_numsub(stack.redis_url, channel, 0)


async def test_generation_updated_replays_the_current_state_streams_and_completes(stack: Stack) -> None:
    # given a generation that is running
    user = await stack.user(credits=50)
    generation_id = await stack.api_a.generate(user.token, stack.model_id)

    # when it is followed over SSE from replica B
    stream = await open_stream(stack.b.http_url, UPDATED, {"id": generation_id}, token=user.token)
    await stream.wait_ended(timeout=20)

    # then the first event is its current state, the last SUCCEEDED with outputs, then `complete`
    assert stream.status == 200 and stream.is_stream
    assert stream.completed and stream.messages[-1] == {"event": "complete", "data": None}
    states = statuses(stream.results, "generationUpdated")
    assert states[-1] == "SUCCEEDED" and len(states) >= 1
    final = stream.results[-1]["data"]["generationUpdated"]["generation"]
    assert final["outputs"][0]["contentType"] == "image/png"

    # and a late subscriber gets the final state, then complete
    late = await open_stream(stack.a.http_url, UPDATED, {"id": generation_id}, token=user.token, method="GET")
    await late.wait_ended()
    assert statuses(late.results, "generationUpdated") == ["SUCCEEDED"] and late.completed
    await stream.close()
    await late.close()


async def test_the_graphql_sse_client_follows_a_generation_across_replicas(stack: Stack, node_tools: NodeTools) -> None:
    # given a user with credits
    user = await stack.user(credits=50)

    # when the graphql-sse npm client starts a generation on B and follows it on A
    config = {"replicaA": stack.a.http_url, "replicaB": stack.b.http_url, "token": user.token}
    done = await asyncio.to_thread(
        node_tools.run, SCRIPT, json.dumps({**config, "modelId": stack.model_id}), timeout=60
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)

    # then it got the states up to SUCCEEDED and the server's `complete`
    updated = summary["updated"]
    assert updated.get("complete") is True, updated
    states = statuses(updated["results"], "generationUpdated")
    assert states[-1] == "SUCCEEDED", states
    assert {r["data"]["generationUpdated"]["generation"]["id"] for r in updated["results"]} == {summary["generationId"]}
    # and a query over SSE is one result, then complete
    assert summary["query"]["complete"] is True
    assert summary["query"]["results"] == [{"data": {"credits": {"balance": 40, "reserved": 0, "available": 40}}}]
    # and a subscription without a token was refused with 401 before any stream
    assert summary["anonymous"]["results"] == [] and summary["anonymous"]["status"] == 401, summary["anonymous"]


async def test_credits_and_keepalives_arrive_and_another_user_sees_nothing(stack: Stack) -> None:
    # given two users, each streaming creditsChanged
    alice, bob = await stack.user(), await stack.user()
    mine = await open_stream(stack.a.http_url, CREDITS, token=alice.token)
    theirs = await open_stream(stack.a.http_url, CREDITS, token=bob.token)
    await wait_for_numsub(stack.redis_url, user_channel(alice.user_id), 1)
    await wait_for_numsub(stack.redis_url, user_channel(bob.user_id), 1)

    # when alice is granted credits
    await grant_credits(stack.container, alice.user_id, 7)

    # then alice's stream shows the balance, keep-alive comments keep coming, bob gets none of it
    await mine.wait_for(lambda s: len(s.results) >= 1, what="alice's balance")
    assert mine.results[0] == {"data": {"creditsChanged": {"balance": 7, "reserved": 0, "available": 7}}}
    await theirs.wait_for(lambda s: s.comments >= 3, what="keep-alive comments")
    assert theirs.results == []
    await mine.close()
    await theirs.close()


# ---------------------------------------------------------------- refusals and limits


@pytest.mark.parametrize("case", ["missing", "garbage", "expired"])
async def test_a_subscription_without_a_valid_token_gets_401_before_any_stream(stack: Stack, case: str) -> None:
    user = await stack.user()
    old = datetime.now(UTC) - timedelta(hours=1)
    expired = tokens_with_ttl(60).issue_access(user.user_id, Role.USER, now=old).token
    token = {"missing": None, "garbage": "not-a-jwt", "expired": expired}[case]
    stream = await open_stream(stack.a.http_url, CREDITS, token=token)
    assert stream.status == 401 and not stream.is_stream
    assert stream.response.headers["www-authenticate"] == "Bearer"
    assert stream.response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await stream.close()


async def test_queries_and_mutations_over_sse_are_one_result_then_complete(stack: Stack) -> None:
    user = await stack.user(credits=3)
    query = await open_stream(stack.a.http_url, "{ credits { balance } }", token=user.token, method="GET")
    mutation = await open_stream(stack.b.http_url, LOGOUT, token=user.token)
    for stream in (query, mutation):
        await stream.wait_ended()
        assert [m["event"] for m in stream.messages] == ["next", "complete"]
    assert query.results == [{"data": {"credits": {"balance": 3}}}]
    assert mutation.results == [{"data": {"logoutEverywhere": {"__typename": "LogoutSuccess"}}}]
    # and a mutation over GET is refused, as over plain HTTP
    refused = await open_stream(stack.a.http_url, LOGOUT, token=user.token, method="GET")
    assert refused.status == 405 and not refused.is_stream


async def test_at_most_the_cap_of_streams_per_user_and_closing_one_frees_a_place(stack: Stack) -> None:
    # given a user with the cap of open streams on replica A
    user = await stack.user()
    streams = [await open_stream(stack.a.http_url, CREDITS, token=user.token) for _ in range(MAX_STREAMS)]
    assert all(s.status == 200 for s in streams)

    # when one more is asked for, it is refused with 429
    extra = await open_stream(stack.a.http_url, CREDITS, token=user.token)
    assert extra.status == 429 and not extra.is_stream
    assert extra.response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert extra.response.headers["retry-after"]

    # then closing one lets the next one in, and the last close releases the Redis subscription
    await streams.pop().close()
    again = await _open_when_admitted(stack.a.http_url, user.token)
    for stream in [*streams, again]:
        await stream.close()
    await wait_for_numsub(stack.redis_url, user_channel(user.user_id), 0)


async def _open_when_admitted(url: str, token: str) -> SseStream:
    """The server notices a disconnect a moment after the client closed: retry a 429 briefly."""
    async with asyncio.timeout(10):
        while True:
            stream = await open_stream(url, CREDITS, token=token)
            if stream.status != 429:
                return stream
            await stream.close()
            await asyncio.sleep(0.05)


async def test_signing_out_ends_the_stream_with_an_unauthenticated_error(stack: Stack) -> None:
    # given a stream on replica A
    user = await stack.user()
    stream = await open_stream(stack.a.http_url, CREDITS, token=user.token)
    await wait_for_numsub(stack.redis_url, user_channel(user.user_id), 1)

    # when the session ends through replica B
    await stack.api_b.execute(LOGOUT, token=user.token)

    # then A ends the stream: an UNAUTHENTICATED error, then complete
    await stream.wait_ended()
    assert stream.messages[-1]["event"] == "complete"
    assert stream.results[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await wait_for_numsub(stack.redis_url, user_channel(user.user_id), 0)


async def test_a_token_expiring_during_the_stream_ends_it_with_an_unauthenticated_error(stack: Stack) -> None:
    # given a stream whose token expires in about two seconds
    user = await stack.user()
    token = tokens_with_ttl(3).issue_access(user.user_id, Role.USER)
    stream = await open_stream(stack.a.http_url, CREDITS, token=token.token)
    await wait_for_numsub(stack.redis_url, user_channel(user.user_id), 1)
    await grant_credits(stack.container, user.user_id, 1)
    await stream.wait_for(lambda s: len(s.results) == 1, what="the first balance")

    # when the token expires, then the stream ends: an UNAUTHENTICATED error, complete, the subscription gone
    await stream.wait_ended(timeout=10)
    assert datetime.now(UTC) >= token.expires_at.replace(microsecond=0)  # the JWT's exp is whole seconds
    assert stream.results[-1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert stream.messages[-1]["event"] == "complete" and len(stream.results) == 2
    await wait_for_numsub(stack.redis_url, user_channel(user.user_id), 0)
    await stream.close()


async def test_a_client_that_never_reads_is_dropped_without_delaying_another(stack: Stack) -> None:
    # given a client with a tiny receive buffer that never reads its stream, and one that reads
    user = await stack.user()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", stack.a.port))
    body = json.dumps({"query": BULKY}).encode()
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {user.token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    slow.sendall(head.encode() + body)
    reader = await open_stream(stack.a.http_url, BULKY, token=user.token)
    await reader.wait_for(lambda s: s.comments >= 1, what="the reader's stream")
    channel = user_channel(user.user_id)
    await wait_for_numsub(stack.redis_url, channel, 1)

    # when more large events are published on the user's channel than the kernel's socket buffers hold
    generation = Generation(
        id=uuid.uuid4(),
        user_id=user.user_id,
        model_id=uuid.UUID(stack.model_id),
        prompt="bulky",
        status=GenerationStatus.PROCESSING,
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
        params={"text": "x" * 48_000},
    )
    redis = Redis.from_url(stack.redis_url)
    try:
        for batch in range(1, BATCHES + 1):
            for n in range(10):
                progress = (batch * 10 + n) / 1000
                snapshot = dataclasses.replace(generation, progress=progress)
                await redis.publish(channel, encode_event(GenerationChanged.of(snapshot, None, datetime.now(UTC))))

            # then the reading client keeps up, whatever the other one does
            last = (batch * 10 + 9) / 1000
            await reader.wait_for(
                lambda s, p=last: any(
                    r["data"]["myGenerationEvents"]["generation"]["progress"] == p for r in s.results
                ),
                timeout=10,
                what=f"progress {last}",
            )
    finally:
        await redis.aclose()

    # and the server dropped the client that never read (once a write waited SSE_WRITE_TIMEOUT_SECONDS)
    await asyncio.sleep(1.5)
    slow.setblocking(False)
    received = await _drain_until_closed(slow, timeout=15)
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert b"event: complete" not in received
    await reader.close()
    await wait_for_numsub(stack.redis_url, channel, 0)


async def _drain_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent before it closed the connection (fails if it never closes)."""
    loop = asyncio.get_running_loop()
    chunks = []
    async with asyncio.timeout(timeout):
        while True:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                sock.close()
                return b"".join(chunks)
            chunks.append(chunk)
