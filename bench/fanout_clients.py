"""The subscribers of bench/fanout.py (graphql-transport-ws, or GraphQL over SSE), and how many subscriptions Redis holds.

The SSE subscriber speaks HTTP/1.1 on a bare asyncio stream (chunked body, SSE lines): a
client library's machinery per connection would cost the client's CPU more than the
server's work it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import websockets
from redis.asyncio import Redis

COMPRESSION = os.environ.get("BENCH_WS_COMPRESSION", "1") == "1"


@dataclass
class Subscriber:
    user: int
    ws: Any = None
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    #: "ws" or "sse"; for SSE, `ws` is the stream's (reader, writer).
    transport: str = "ws"


async def open_sse_subscriber(url: str, token: str, sub: Subscriber, query: str, variables: dict[str, Any]) -> None:
    """POST /graphql with `Accept: text/event-stream`; returns once the stream's headers arrived."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=1 << 20)
    body = json.dumps({"query": query, "variables": variables}).encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status = await asyncio.wait_for(reader.readline(), 30)
    assert status.startswith(b"HTTP/1.1 200"), status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    sub.ws, sub.transport = (reader, writer), "sse"


async def _read_sse(sub: Subscriber) -> None:
    """The chunked body, split into SSE messages; a `next` message's `at` gives the latency."""
    reader, _ = sub.ws
    buffer = b""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                return
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            now = time.time()
            *messages, buffer = buffer.split(b"\n\n")
            for message in messages:
                if not message.startswith(b"event: next\n"):
                    continue
                data = json.loads(message.split(b"\ndata: ", 1)[1])
                at = datetime.fromisoformat(data["data"]["myGenerationEvents"]["at"]).timestamp()
                sub.received += 1
                sub.latencies.append(now - at)


async def close_subscriber(sub: Subscriber) -> None:
    if sub.transport == "sse":
        _, writer = sub.ws
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return
    await sub.ws.close()


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
    if sub.transport == "sse":
        await _read_sse(sub)
        return
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
