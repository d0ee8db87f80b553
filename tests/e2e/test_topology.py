"""The production topology under faults: two replicas, a worker, a scheduler, PostgreSQL, a private Redis, S3.

One topology per module (tests/fixtures/topology.py); each scenario starts again whatever
an earlier one killed. Outcomes are read from the clients and from PostgreSQL directly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.subscription_support import (
    GENERATE,
    Account,
    Api,
    LegacyWs,
    TransportWs,
    app_container,
    wait_for_numsub,
)
from tests.e2e.topology_checks import (
    HeldJob,
    accounts,
    generations,
    job_in_hand,
    statuses,
    still_pending,
    unread_bytes,
)
from tests.fixtures.credits import grant_credits
from tests.fixtures.process_groups import Child
from tests.fixtures.topology import Topology
from tests.fixtures.waiting import eventually

pytestmark = [pytest.mark.topology, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

MY_EVENTS = "subscription MyEvents { myGenerationEvents { generation { id status } } }"
ME = "query Me { me { id } }"
LIFECYCLE = ["QUEUED", "SUBMITTING", "PROCESSING", "SUCCEEDED"]
FINAL = {"succeeded", "failed", "canceled", "expired"}
# What an answer must never show a client: a traceback, an exception's repr, an OS error, an internal address.
LEAKS = ("Traceback", "Error(", "Errno", "127.0.0.1")
COST = 10  # sim-image, as seeded
JOBS = 6


def auth(user: Account) -> dict[str, Any]:
    return {"Authorization": f"Bearer {user.token}"}


def channel(user: Account) -> str:
    return f"user:{user.user_id}"


def collapsed(seen: list[str]) -> list[str]:
    """The statuses in the order they arrived, each run of repeats (progress events) as one."""
    return [status for i, status in enumerate(seen) if i == 0 or seen[i - 1] != status]


async def grant(topology: Topology, user: Account, amount: int) -> None:
    async with app_container(topology.side_settings()) as container:
        await grant_credits(container, user.user_id, amount)


async def events_of(ws: TransportWs | LegacyWs, op: str, generation_id: str, until: str) -> list[str]:
    """The statuses pushed for `generation_id` up to `until`, other generations' events skipped."""
    seen: list[str] = []
    while not seen or seen[-1] != until:
        event = (await ws.next_data(op, timeout=20))["myGenerationEvents"]["generation"]
        if event["id"] == generation_id:
            seen.append(event["status"])
    return seen


async def assert_ledger_exact(topology: Topology) -> None:
    async with topology.database() as conn:
        for account in await accounts(conn):
            assert (account.balance, account.reserved) == (account.ledger_balance, account.ledger_reserved), account


async def test_a_generation_started_on_replica_a_is_pushed_to_a_subscriber_on_replica_b(
    whole_topology: Topology,
) -> None:
    topology = whole_topology
    a = Api(topology.replica("A").http_url)
    try:
        # given a user with credits, subscribed to their generations' events on replica B
        user = await a.register()
        await grant(topology, user, 50)
        ws = await TransportWs.connect(topology.replica("B").ws_url, auth(user))
        op = await ws.subscribe(MY_EVENTS)
        await wait_for_numsub(topology.redis_url, channel(user), 1)

        # when a generation is started through replica A
        generation_id = await a.generate(user.token, await a.model_id(user.token))

        # then B pushes every status change of it, in the lifecycle's order, to the end
        assert collapsed(await events_of(ws, op, generation_id, "SUCCEEDED")) == LIFECYCLE
        await ws.close()
    finally:
        await a.aclose()


async def test_a_worker_killed_mid_job_leaves_every_job_finished_once_by_a_new_worker(
    whole_topology: Topology,
) -> None:
    topology = whole_topology
    a, b = Api(topology.replica("A").http_url), Api(topology.replica("B").http_url)
    redis = Redis.from_url(topology.redis_url)
    try:
        # given jobs started on both replicas, all at the provider (PROCESSING) at about the same time
        user = await a.register()
        await grant(topology, user, 100)
        model = await a.model_id(user.token)
        ids = list(await asyncio.gather(*(api.generate(user.token, model) for api in [a, b] * (JOBS // 2))))
        async with topology.database() as conn:
            await eventually(
                lambda: _all_in(conn, ids, {"processing"} | FINAL), what="every job to be submitted", timeout=20
            )

            # when the worker is SIGKILLed while it holds a finalize of one of them (read, unacknowledged)
            assert topology.worker is not None
            held = await _stopped_holding_a_finalize(topology.worker, redis)
            await topology.worker.stop(signal.SIGKILL)
            assert held.generation_id in ids

            # and a new worker starts
            await topology.restart_worker()

            # then every job ends, each succeeded, charged once, with exactly one output in S3
            await eventually(lambda: _all_in(conn, ids, FINAL), what="every job to be final", timeout=40)
            records = await generations(conn, ids)
        # (the message the dead worker held was taken over and acknowledged)
        await eventually(lambda: _not(still_pending(redis, held.message_id)), what="the held job's ack", timeout=30)
        assert [r.status for r in records] == ["succeeded"] * JOBS, (records, topology.logs())
        for record in records:
            assert (record.reserves, record.captures, record.charged_credits) == (1, 1, COST), record
            assert record.outputs == 1, record
            head = await asyncio.to_thread(topology.s3.head_object, Bucket=topology.bucket, Key=record.output_keys[0])
            assert head["ContentLength"] > 0
        # and the credits ledger sums to every balance, nothing left reserved for these jobs
        await assert_ledger_exact(topology)
        async with topology.database() as conn:
            mine = [acc for acc in await accounts(conn) if acc.user_id == user.user_id]
        assert [(acc.balance, acc.reserved) for acc in mine] == [(100 - JOBS * COST, 0)]
    finally:
        await redis.aclose()
        await a.aclose()
        await b.aclose()


async def _all_in(conn: Any, ids: list[str], wanted: set[str]) -> bool:
    return all(status in wanted for status in (await statuses(conn, ids)).values())


async def _not(condition: Awaitable[bool]) -> bool:
    return not await condition


async def _stopped_holding_a_finalize(worker: Child, redis: Redis, timeout: float = 20.0) -> HeldJob:
    """SIGSTOP the worker at a moment it holds an unacknowledged finalize; that job.

    A job is in hand for milliseconds: look without pause, freeze the worker, and check
    again that the job is still unacknowledged (else let it go on and look again).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = await job_in_hand(redis, frozenset({"finalize_generation"}))
        if held is None:
            continue
        worker.signal_group(signal.SIGSTOP)
        if await still_pending(redis, held.message_id):
            return held
        worker.signal_group(signal.SIGCONT)
    raise AssertionError(f"the worker held no finalize within {timeout:g}s")


async def test_an_open_subscription_delivers_again_after_redis_is_killed_and_restarted(
    whole_topology: Topology,
) -> None:
    topology = whole_topology
    a, replica_b = Api(topology.replica("A").http_url), topology.replica("B")
    try:
        # given a user subscribed on replica B
        user = await a.register()
        await grant(topology, user, 50)
        model = await a.model_id(user.token)
        ws = await TransportWs.connect(replica_b.ws_url, auth(user))
        op = await ws.subscribe(MY_EVENTS)
        await wait_for_numsub(topology.redis_url, channel(user), 1)

        # when Redis is killed (B notices) ...
        lost = "redis pub/sub connection lost"
        before = replica_b.child.output().count(lost)
        await topology.kill_redis()
        await eventually(
            lambda: replica_b.child.output().count(lost) > before, what="replica B to notice Redis is gone"
        )
        # ... a generate during the outage answers without leaking what failed ...
        during = await a.http.post(
            "/graphql", json={"query": GENERATE, "variables": {"model": model, "prompt": "x"}}, headers=auth(user)
        )
        assert during.status_code != 500, during.text
        assert not any(leak in during.text for leak in LEAKS), during.text
        # (typed: accepted and left to the sweep, or refused as SERVICE_UNAVAILABLE; docs/deploy.md's table)
        answer = during.json()
        typename = ((answer.get("data") or {}).get("generate") or {}).get("__typename")
        codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []}
        assert typename == "GenerateSuccess" or codes == {"SERVICE_UNAVAILABLE"}, during.text
        # ... and Redis comes back, empty, on the same port
        await topology.start_redis()

        # then B re-subscribes by itself, and the next generation started on A reaches the same socket
        # and is run to the end by the worker, which rejoined the emptied stream by itself
        await wait_for_numsub(topology.redis_url, channel(user), 1, timeout=20)
        generation_id = await _generate_once_redis_answers(a, user, model)
        statuses = await events_of(ws, op, generation_id, "SUCCEEDED")
        assert statuses[0] == "QUEUED" and statuses[-1] == "SUCCEEDED", statuses
        assert ws.close_code is None
        await ws.close()
        await assert_ledger_exact(topology)
    finally:
        await a.aclose()


async def _generate_once_redis_answers(api: Api, user: Account, model: str, timeout: float = 15.0) -> str:
    """A refused generate (Redis still reconnecting) is retried, as a client would; the first success's id."""
    deadline = time.monotonic() + timeout
    while True:
        response = await api.http.post(
            "/graphql", json={"query": GENERATE, "variables": {"model": model, "prompt": "y"}}, headers=auth(user)
        )
        result = (response.json().get("data") or {}).get("generate") or {}
        if result.get("__typename") == "GenerateSuccess":
            return str(result["generation"]["id"])
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)


async def test_sigterm_of_a_replica_closes_its_subscriptions_with_1012_and_finishes_requests_in_flight(
    whole_topology: Topology,
) -> None:
    topology = whole_topology
    a, replica_b = Api(topology.replica("A").http_url), topology.replica("B")
    try:
        # given subscriptions on replica B over both protocols, and one on replica A
        user = await a.register()
        await grant(topology, user, 10)
        clients: list[TransportWs | LegacyWs] = [
            await TransportWs.connect(replica_b.ws_url, auth(user)),
            await LegacyWs.connect(replica_b.ws_url, auth(user)),
        ]
        for ws in clients:
            await ws.subscribe(MY_EVENTS)
        on_a = await TransportWs.connect(topology.replica("A").ws_url, auth(user))
        on_a_op = await on_a.subscribe(MY_EVENTS)
        await wait_for_numsub(topology.redis_url, channel(user), 2)
        # and a request B has begun to read (headers and half its body) when the signal comes
        body = json.dumps({"query": ME}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", replica_b.port)
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {user.token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + body[:10])
        await writer.drain()
        client_port = writer.get_extra_info("sockname")[1]
        await eventually(lambda: unread_bytes(replica_b.port, client_port) == 0, what="B to read the request")

        # when B gets SIGTERM
        replica_b.child.signal_group(signal.SIGTERM)

        # then its subscriptions are closed with 1012 (Service Restart: reconnect elsewhere)
        codes = await asyncio.gather(*(ws.wait_closed(timeout=10) for ws in clients))
        assert codes == [1012, 1012]
        # and the request in flight still completes with 200 once its body arrives
        writer.write(body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 200"), answer
        assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {"data": {"me": {"id": str(user.user_id)}}}
        # and B exits cleanly, while A keeps serving
        # (uvicorn re-raises the signal once its shutdown is complete)
        assert await replica_b.child.exited(15) in (0, -signal.SIGTERM), replica_b.child.output()
        assert "Application shutdown complete" in replica_b.child.output()
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{topology.replica('A').http_url}/ready")).status_code == 200
        generation_id = await a.generate(user.token, await a.model_id(user.token))
        assert (await events_of(on_a, on_a_op, generation_id, "QUEUED"))[-1] == "QUEUED"
        assert on_a.close_code is None
        await on_a.close()
    finally:
        await a.aclose()


CREATE_KEY = """mutation { createApiKey(input: {name: "replicas", scopes: ["read"]}) {
  ... on CreateApiKeySuccess { key apiKey { id } } } }"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }"
CREDITS = "subscription Credits { creditsChanged { available } }"


async def test_an_api_key_revoked_on_replica_a_is_refused_on_b_within_a_second_and_its_subscription_closed(
    whole_topology: Topology,
) -> None:
    topology = whole_topology
    a, b = Api(topology.replica("A").http_url), Api(topology.replica("B").http_url)
    try:
        # given a key that replica B knows (remembered by its memo) and a subscription it opened on B
        user = await a.register("key")
        made = (await a.execute(CREATE_KEY, token=user.token))["createApiKey"]
        key, key_id = made["key"], made["apiKey"]["id"]
        assert (await b.execute(ME, token=key))["me"]["id"] == str(user.user_id)
        ws = await TransportWs.connect(topology.replica("B").ws_url, {"Authorization": f"Bearer {key}"})
        await ws.subscribe(CREDITS)
        await wait_for_numsub(topology.redis_url, channel(user), 1)

        # when the owner revokes it through replica A
        await a.execute(REVOKE_KEY, {"id": key_id}, token=user.token)
        revoked = time.monotonic()

        # then within a second of the revocation B has closed the key's subscription with 4401 (as for an
        # ended session) and refuses the key
        assert await ws.wait_closed(timeout=1.0) == 4401

        async def refused_on_b() -> bool:
            headers = {"Authorization": f"Bearer {key}"}
            body = (await b.http.post("/graphql", json={"query": ME}, headers=headers)).json()
            return [e["extensions"]["code"] for e in body.get("errors") or []] == ["UNAUTHENTICATED"]

        await eventually(refused_on_b, what="replica B refusing the revoked key", timeout=1.0)
        assert time.monotonic() - revoked < 1.0
    finally:
        await a.aclose()
        await b.aclose()
