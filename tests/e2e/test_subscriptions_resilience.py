"""Subscriptions beyond the main stack: embedded mode (no Redis), a Redis restart under a live
connection, a stalled client, SIGTERM.

The Redis-restart test runs its own `redis-server` on a free port (and skips without
the binary, unless CI=true); the server's REDIS_URL points there.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.events import GenerationChanged
from domain.generations import Generation
from domain.generations import GenerationStatus as S
from infrastructure.pubsub import BoundedBroadcast, BroadcastPublisher, RedisPubSubBackend
from tests.e2e.subscription_support import (
    Api,
    LegacyWs,
    Recorder,
    TransportWs,
    app_container,
    base_env,
    seed_catalogue,
    seed_settings,
    start_redis,
    start_server,
    wait_for_numsub,
)
from tests.fixtures.credits import grant_credits
from tests.fixtures.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

CREDITS = "subscription Credits { creditsChanged { balance reserved available } }"
MY_EVENTS = "subscription MyEvents { myGenerationEvents { generation { id status } } }"
UPDATED = "subscription Updated($id: ID!) { generationUpdated(id: $id) { generation { id status } } }"
BIG_EVENTS = "subscription Big { myGenerationEvents { generation { progress prompt } } }"


def server_env(postgres_url: str, redis_url: str, tmp: Path) -> dict[str, str]:
    return base_env(
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        LOCAL_STORAGE_PATH=str(tmp / "chunks"),
        DATA_DIR=str(tmp / "data"),
    )


@pytest.fixture
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true requires redis-server for the Redis-restart test")
        pytest.skip("redis-server is not installed")
    return binary


async def test_a_subscription_continues_across_a_redis_restart_without_reconnecting(
    clean_postgres: str, redis_server_binary: str, tmp_path: Path
) -> None:
    # given a server on a private Redis and a subscriber that has received one event
    redis_proc, port = await start_redis(tmp_path)
    redis_url = f"redis://127.0.0.1:{port}/0"
    settings = seed_settings(clean_postgres, redis_url, tmp_path)
    await seed_catalogue(settings)
    server = await start_server(server_env(clean_postgres, redis_url, tmp_path), tmp_path)
    api = Api(server.http_url)
    try:
        user = await api.register()
        ws = await TransportWs.connect(server.ws_url, {"Authorization": f"Bearer {user.token}"})
        op = await ws.subscribe(CREDITS)
        channel = f"user:{user.user_id}"
        await wait_for_numsub(redis_url, channel, 1)
        async with app_container(settings) as container:
            await grant_credits(container, user.user_id, 1)
        assert (await ws.next_data(op))["creditsChanged"]["balance"] == 1

        # when Redis goes away and comes back on the same port (empty: no persistence)
        assert await redis_proc.stop(signal.SIGKILL) != 0
        await eventually(
            lambda: "redis pub/sub connection lost" in server.proc.output(), what="the server to notice Redis is gone"
        )
        redis_proc, _ = await start_redis(tmp_path, port)

        # then the server re-subscribes by itself (within its backoff cap) ...
        await wait_for_numsub(redis_url, channel, 1, timeout=15)
        # ... and the next event reaches the same, never-reconnected WebSocket
        async with app_container(settings) as container:
            await grant_credits(container, user.user_id, 2)
        assert await ws.next_data(op, timeout=10) == {"creditsChanged": {"balance": 3, "reserved": 0, "available": 3}}
        assert ws.close_code is None
        assert "reconnected" in server.proc.output()
        await ws.close()
    finally:
        await api.aclose()
        await server.proc.stop()
        await redis_proc.stop()


async def test_a_stalled_client_neither_grows_the_server_nor_delays_others(
    clean_postgres: str, clean_redis: str, tmp_path: Path
) -> None:
    # given a generation whose every event carries and renders ~20 KB, and two subscribers of its owner:
    # one reads, the other stopped reading (its socket buffers fill, then its queue)
    settings = seed_settings(clean_postgres, clean_redis, tmp_path)
    await seed_catalogue(settings)
    server = await start_server(server_env(clean_postgres, clean_redis, tmp_path), tmp_path)
    api = Api(server.http_url)
    user = await api.register()
    await api.aclose()
    async with app_container(settings) as container:
        generation = await add_processing_generation(container, user.user_id, prompt=secrets.token_urlsafe(15_000))
    auth = {"Authorization": f"Bearer {user.token}"}
    reader, stalled = await TransportWs.connect(server.ws_url, auth), await TransportWs.connect(server.ws_url, auth)
    reading, stalled_op = await reader.subscribe(BIG_EVENTS), await stalled.subscribe(BIG_EVENTS)
    await wait_for_numsub(clean_redis, f"user:{user.user_id}", 1)
    stalled.ws.transport.pause_reading()
    rss_before = server.proc.rss_kib()

    # when 3,000 progress events go out (60 MB of responses for each subscriber)
    broadcast = BoundedBroadcast(backend=RedisPubSubBackend(clean_redis))
    await broadcast.connect()
    publisher = BroadcastPublisher(broadcast)
    try:
        for n in range(1, 3001):
            now = datetime.now(UTC)
            moved = replace(generation, progress=n / 10_000, updated_at=now)
            await publisher.publish(GenerationChanged.of(moved, S.PROCESSING, now))
            # then the reading client keeps up: it is never made to wait for the stalled one
            if n % 500 == 0:
                while (await reader.next_data(reading))["myGenerationEvents"]["generation"]["progress"] != n / 10_000:
                    pass
    finally:
        await broadcast.disconnect()
    grown_mib = (server.proc.rss_kib() - rss_before) / 1024

    # and the server kept only a bounded backlog for the stalled one (drop-oldest queue of 256 events)
    assert grown_mib < 40, grown_mib
    assert "slow subscriber" in server.proc.output()
    # and once it reads again it catches up to the newest state, having lost only older events
    stalled.ws.transport.resume_reading()
    seen: list[float] = []
    while not seen or seen[-1] != 0.3:
        seen.append((await stalled.next_data(stalled_op))["myGenerationEvents"]["generation"]["progress"])
    assert len(seen) < 3000 and seen == sorted(seen)
    await reader.close()
    await stalled.close()
    await server.proc.stop()


async def add_processing_generation(container: Any, user_id: uuid.UUID, prompt: str) -> Generation:
    model = next(m for m in await container.catalogue.models() if m.slug == "sim-image")
    now = datetime.now(UTC)
    generation = Generation(uuid.uuid4(), user_id, model.id, prompt, S.PROCESSING, now, now)
    async with container.uow() as uow:
        await uow.generations.add(generation)
        await uow.commit()
    return generation


async def test_sigterm_ends_open_subscriptions_cleanly(clean_postgres: str, clean_redis: str, tmp_path: Path) -> None:
    # given a server with open subscriptions on both protocols
    settings = seed_settings(clean_postgres, clean_redis, tmp_path)
    await seed_catalogue(settings)
    server = await start_server(server_env(clean_postgres, clean_redis, tmp_path), tmp_path)
    api = Api(server.http_url)
    user = await api.register()
    await api.aclose()
    auth: dict[str, Any] = {"Authorization": f"Bearer {user.token}"}
    clients: list[TransportWs | LegacyWs] = [
        await TransportWs.connect(server.ws_url, auth),
        await TransportWs.connect(server.ws_url, auth),
        await LegacyWs.connect(server.ws_url, auth),
    ]
    for ws in clients:
        await ws.subscribe(CREDITS)
        await ws.subscribe(MY_EVENTS)
    channel = f"user:{user.user_id}"
    await wait_for_numsub(clean_redis, channel, 1)

    # when the process gets SIGTERM (what every host sends before stopping a container)
    started = time.monotonic()
    server.proc.process.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(ws.wait_closed(timeout=10) for ws in clients))
    exit_code = await server.proc.stop(timeout=15)
    took = time.monotonic() - started

    # then every client got a proper close frame "1012 Service Restart" (reconnect, then
    # re-subscribe: generationUpdated starts with the current state), promptly
    assert codes == [1012, 1012, 1012]
    assert took < 5, took
    # and the process shut down through its lifespan, without an error, releasing Redis
    assert exit_code in (0, -signal.SIGTERM), exit_code
    log = server.proc.output()
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log and " ERROR " not in log, log
    await wait_for_numsub(clean_redis, channel, 0)


async def test_the_embedded_mode_serves_subscriptions_without_redis(clean_postgres: str, tmp_path: Path) -> None:
    # given `genhub serve` without REDIS_URL: in-memory fan-out, tasks run in the API process
    settings = seed_settings(clean_postgres, None, tmp_path)
    await seed_catalogue(settings)
    env = base_env(
        DATABASE_URL=clean_postgres,
        LOCAL_STORAGE_PATH=str(tmp_path / "chunks"),
        DATA_DIR=str(tmp_path / "data"),
        SIMULATED_STEPS="3",
        SIMULATED_STEP_SECONDS="0.3",
        POLL_INTERVAL_SECONDS="0.2",
    )
    server = await start_server(env, tmp_path, "serve-embedded")
    api = Api(server.http_url)
    try:
        user = await api.register()
        async with app_container(settings) as container:
            await grant_credits(container, user.user_id, 20)
        ws = await TransportWs.connect(server.ws_url, {"Authorization": f"Bearer {user.token}"})

        # when a generation is started and followed by id
        generation_id = await api.generate(user.token, await api.model_id(user.token))
        updated = Recorder(ws, await ws.subscribe(UPDATED, {"id": generation_id}))
        await updated.run(timeout=20)

        # then it is followed from its current state to SUCCEEDED, forward only, then complete
        seen = [p["data"]["generationUpdated"]["generation"]["status"] for p in updated.items]
        order = ["QUEUED", "SUBMITTING", "PROCESSING", "SUCCEEDED"]
        assert seen[-1] == "SUCCEEDED" and seen == sorted(seen, key=order.index), seen
        assert updated.ended is not None and updated.ended["type"] == "complete"
        await ws.close()
    finally:
        await api.aclose()
        await server.proc.stop()
