"""GET /metrics after a real generation (embedded mode), its token, the queue depth on Redis, multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from infrastructure.metrics import QUEUE_DEPTH, refresh_queue_depth, render, track_subscription
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app
from tests.fixtures.waiting import eventually
from tests.integration.asgi_websocket import AsgiWebSocket
from tests.integration.board_world import CREDITS, GENERATE, add_model, grant

GENERATION = "query Generation($id: ID!) { generation(id: $id) { status } }"
FINAL = ("SUCCEEDED", "FAILED", "CANCELED", "EXPIRED")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: GraphQLClient) -> Samples:
    response = await client.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphQLClient]:
    settings = app_settings(
        tmp_path_factory.mktemp("metrics"), simulated_step_seconds=0.05, simulated_steps=2, poll_interval_seconds=0.2
    )
    async with running_app(settings) as c:
        yield c


async def test_metrics_after_a_generation(client: GraphQLClient) -> None:
    # given a user with credits and a simulated model
    session = await register_user(client, "metrics@example.com")
    token = session["accessToken"]
    model_id = await add_model(client, slug="metrics-image")
    await grant(client, session["user"]["id"], 100)
    before = await scrape(client)
    # when it runs one generation to its end
    started = await client.execute(GENERATE, {"modelId": model_id}, token=token)
    generation_id = started["data"]["generate"]["generation"]["id"]

    async def status() -> str:
        body = await client.execute(GENERATION, {"id": generation_id}, token=token)
        return str(body["data"]["generation"]["status"])

    async def ended() -> bool:
        return await status() in FINAL

    await eventually(ended, what="the generation to end", every=0.05)
    assert await status() == "SUCCEEDED"
    after = await scrape(client)

    # then every family of the issue has the expected series
    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("genhub_graphql_operations_total", operation="Generate", outcome="ok") == 1
    assert grew("genhub_graphql_operation_duration_seconds_count", operation="Generate") == 1
    assert value(after, "genhub_graphql_operation_duration_seconds_bucket", operation="Generate", le="+Inf") >= 1
    assert grew("genhub_tasks_total", task="submit_generation", outcome="ok") == 1
    assert grew("genhub_task_duration_seconds_count", task="submit_generation") == 1
    assert grew("genhub_provider_call_duration_seconds_count", provider="simulated", call="submit") == 1
    assert grew("genhub_provider_call_duration_seconds_count", provider="simulated", call="download") >= 1
    assert grew("genhub_credit_moves_total", kind="reserve") == 1
    assert grew("genhub_credit_moves_total", kind="capture") == 1
    assert grew("genhub_credit_moved_total", kind="reserve") == 10
    assert ("genhub_active_subscriptions", frozenset()) in after
    assert ("genhub_task_queue_depth", frozenset({("state", "waiting")})) in after
    assert ("genhub_task_queue_depth", frozenset({("state", "pending")})) in after
    assert ("genhub_tasks_running", frozenset()) in after


async def test_rolled_back_credit_moves_are_not_counted(client: GraphQLClient) -> None:
    # given a user without credits: the reserve row is written, then rolled back
    session = await register_user(client, "broke@example.com")
    model_id = await add_model(client, slug="broke-image")
    before = await scrape(client)
    result = await client.execute(GENERATE, {"modelId": model_id}, token=session["accessToken"])
    assert result["data"]["generate"]["__typename"] == "InsufficientCredits"
    after = await scrape(client)
    assert value(after, "genhub_credit_moves_total", kind="reserve") == value(
        before, "genhub_credit_moves_total", kind="reserve"
    )
    credits = await client.execute(CREDITS, token=session["accessToken"])
    assert credits["data"]["credits"]["reserved"] == 0


async def test_rejected_and_failed_operations_are_labelled(client: GraphQLClient) -> None:
    before = await scrape(client)
    await client.execute("query Broken { nope }", expect_errors=True)
    await client.execute("query Who { me { id } }", token="not-a-token", expect_errors=True)
    await client.execute("{ me { id } }")
    after = await scrape(client)
    assert (
        value(after, "genhub_graphql_operations_total", operation="Broken", outcome="rejected")
        - value(before, "genhub_graphql_operations_total", operation="Broken", outcome="rejected")
        == 1
    )
    assert (
        value(after, "genhub_graphql_operations_total", operation="Who", outcome="error")
        - value(before, "genhub_graphql_operations_total", operation="Who", outcome="error")
        == 1
    )
    assert value(after, "genhub_graphql_operations_total", operation="anonymous", outcome="ok") > 0


async def test_active_subscriptions_gauge_follows_real_subscriptions(client: GraphQLClient) -> None:
    session = await register_user(client, "subscriber@example.com")
    before = value(await scrape(client), "genhub_active_subscriptions")
    # when a client subscribes over the WebSocket
    async with AsgiWebSocket(client.app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"token": session["accessToken"]}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": "subscription { creditsChanged { balance } }"}}
        )

        async def active() -> float:
            return value(await scrape(client), "genhub_active_subscriptions")

        async def started() -> bool:  # the subscription starts a moment after `subscribe`
            return await active() > before

        async def ended() -> bool:
            return await active() == before

        await eventually(started, what="the subscription to start", every=0.025)
        # then the gauge counts it while it is open
        assert await active() == before + 1
        await ws.send_json({"id": "1", "type": "complete"})
        await eventually(ended, what="the subscription to end", every=0.025)
    # and forgets it once it is completed
    assert value(await scrape(client), "genhub_active_subscriptions") == before
    with track_subscription():  # the helper for code that is not a GraphQL subscription
        assert value(await scrape(client), "genhub_active_subscriptions") == before + 1


@pytest.mark.redis
async def test_metrics_token_guards_the_scrape(tmp_path: Path) -> None:
    # given an app whose METRICS_TOKEN is set
    token = "scrape-token-0123456789"
    async with running_app(app_settings(tmp_path, metrics_token=token)) as client:
        # when scrapers come without the token, with another one, or with a non-bearer scheme
        refused = [
            await client.http.get("/metrics", headers=headers)
            for headers in (
                {},
                {"Authorization": "Bearer scrape-token-012345678"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": token},
            )
        ]
        # then each gets 401 with a challenge and no samples
        for response in refused:
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
            assert "genhub_" not in response.text
        # and the bearer of the token gets the samples
        allowed = await client.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        assert "# TYPE genhub_tasks_running gauge" in allowed.text


async def test_queue_depth_reads_the_redis_stream(clean_redis: str) -> None:
    # given a stream with a consumer group: 3 messages enqueued, 1 delivered and not acked
    redis = aioredis.Redis.from_url(clean_redis)
    try:
        await redis.xgroup_create("q", "workers", id="0", mkstream=True)
        for n in range(3):
            await redis.xadd("q", {"n": str(n)})
        await redis.xreadgroup("workers", "w1", {"q": ">"}, count=1)
        # when the depth is refreshed (as /metrics does before rendering)
        await refresh_queue_depth(redis, stream="q", group="workers")
        # then 2 wait for a worker and 1 is pending
        assert QUEUE_DEPTH.labels("waiting")._value.get() == 2
        assert QUEUE_DEPTH.labels("pending")._value.get() == 1
        # and a stream that does not exist yet is simply empty
        await refresh_queue_depth(redis, stream="missing", group="workers")
        assert QUEUE_DEPTH.labels("waiting")._value.get() == 0
    finally:
        await redis.aclose()


CHILD = """
import sys
from infrastructure.metrics import ACTIVE_SUBSCRIPTIONS, CREDIT_MOVES
CREDIT_MOVES.labels("grant").inc(int(sys.argv[1]))
ACTIVE_SUBSCRIPTIONS.inc()
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given two processes that counted into the same PROMETHEUS_MULTIPROC_DIR (set before import)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": os.getcwd()}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, amount], env=env) for amount in ("2", "3")]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    # when /metrics renders in multiprocess mode
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = render()[0].decode()
    # then it reports the sum over both processes
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("genhub_credit_moves_total", frozenset({("kind", "grant")}))] == 5
    assert samples[("genhub_active_subscriptions", frozenset())] == 2
    # and a live gauge forgets a process once it is marked dead (docs/observability.md)
    for child in children:
        multiprocess.mark_process_dead(child.pid, str(tmp_path))  # type: ignore[no-untyped-call]
    assert "genhub_active_subscriptions" not in render()[0].decode()


async def test_the_collection_pacer_is_scraped(client: GraphQLClient) -> None:
    # given an app that has run long enough for a middle tick (every fifth 50 ms tick)
    async def froze() -> bool:
        return value(await scrape(client), "genhub_gc_freezes_total") >= 1

    await eventually(froze, what="the pacer's first freeze", every=0.05)
    samples = await scrape(client)
    # then /metrics counts its ticks, and the next reclaim lies beyond the heap held now
    assert value(samples, "genhub_gc_paced_collections_total") >= 5 * value(samples, "genhub_gc_freezes_total")
    assert value(samples, "genhub_gc_reclaim_at_blocks") > sys.getallocatedblocks()


async def test_without_pacing_the_app_leaves_collections_to_cpython(tmp_path: Path) -> None:
    # given an app started with GC_PACING=false
    async with running_app(app_settings(tmp_path, gc_pacing=False)) as off:
        # then no pacer runs: nothing is frozen beyond the start-up heap, and the app answers
        assert not hasattr(off.app.state, "gc")
        assert (await off.http.get("/health")).status_code == 200
