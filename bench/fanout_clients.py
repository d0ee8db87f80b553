"""The WebSocket subscribers of bench/fanout.py, and how many subscriptions Redis holds for them."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import websockets
from redis.asyncio import Redis

COMPRESSION = os.environ.get("BENCH_WS_COMPRESSION", "1") == "1"


@dataclass
class Subscriber:
    user: int
    ws: Any = None
    received: int = 0
    latencies: list[float] = field(default_factory=list)


async def open_subscriber(url: str, token: str, sub: Subscriber, query: str, variables: dict[str, Any]) -> None:
    ws = await websockets.connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=30,
        max_queue=None,
        compression="deflate" if COMPRESSION else None,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await ws.recv())
    assert ack["type"] == "connection_ack", ack
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
    sub.ws = ws


async def read(sub: Subscriber) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in sub.ws:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "ping":
                await sub.ws.send('{"type":"pong"}')
                continue
            if message["type"] != "next":
                continue
            at = datetime.fromisoformat(message["payload"]["data"]["myGenerationEvents"]["at"]).timestamp()
            sub.received += 1
            sub.latencies.append(now - at)


async def numsub(redis_url: str, channels: list[str]) -> int:
    client = Redis.from_url(redis_url)
    try:
        total = 0
        for start in range(0, len(channels), 500):
            total += sum(count for _, count in await client.pubsub_numsub(*channels[start : start + 500]))
        return total
    finally:
        await client.aclose()
