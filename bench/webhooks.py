"""Benchmark the webhook sender: the cost of one attempt to a receiver that answers 200 at once.

A receiver on 127.0.0.1 (asyncio, in this process) answers every POST with 204; the sender
(infrastructure/webhooks/, WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32) sends N signed messages,
C at a time. Each attempt resolves the URL, checks its addresses, opens a fresh connection
(no reuse, by design) and reads the answer. Printed: attempts per second, the latency's
median and 99th percentile, and the CPU milliseconds of this process per attempt (sender and
receiver together: an upper bound of the sender's). For comparison, the same with plain
httpx reusing its connections (what the guard's rules cost on top of an HTTP POST).

    .venv/bin/python bench/webhooks.py [--count 2000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from domain.webhooks import new_secret, signed_headers
from infrastructure.settings import Settings
from infrastructure.webhooks.factory import build_destinations, build_sender

BODY = b'{"type":"generation.completed","timestamp":"2026-12-05T12:00:00Z","data":{"id":"R2VuZXJhdGlvbjox"}}'


HANDLERS: set[asyncio.Task[None]] = set()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    task = asyncio.current_task()
    HANDLERS.add(task)  # type: ignore[arg-type]
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        HANDLERS.discard(task)  # type: ignore[arg-type]
        writer.close()


async def measure(name: str, count: int, concurrency: int, attempt: Callable[[], Awaitable[bool]]) -> None:
    latencies: list[float] = []
    failures = 0
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        nonlocal failures
        async with slots:
            started = time.perf_counter()
            ok = await attempt()
            latencies.append(time.perf_counter() - started)
            failures += not ok

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    print(
        f"{name:<34} {count / wall:8.0f}/s  p50 {statistics.median(latencies) * 1000:6.2f} ms  "
        f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:6.2f} ms  "
        f"cpu {cpu / count * 1000:5.2f} ms/attempt  failed {failures}"
    )


async def main(count: int, concurrency: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    settings = Settings(_env_file=None, webhook_allowed_networks=["127.0.0.1/32"])  # type: ignore[call-arg]
    sender = build_sender(settings, build_destinations(settings))
    secret = new_secret()

    async def guarded() -> bool:
        headers = signed_headers([secret], "msg_bench", int(time.time()), BODY)
        return (await sender.send(url, headers=headers, body=BODY)).delivered

    plain_client = httpx.AsyncClient(trust_env=False)

    async def plain() -> bool:
        headers = signed_headers([secret], "msg_bench", int(time.time()), BODY)
        response = await plain_client.post(url, headers=headers, content=BODY)
        return response.status_code == 204

    await measure("warm-up", 50, concurrency, guarded)
    await measure("sender (check, pin, new connection)", count, concurrency, guarded)
    await measure("plain httpx (keep-alive)", count, concurrency, plain)
    await sender.aclose()
    await plain_client.aclose()
    server.close()
    await asyncio.wait_for(asyncio.gather(*HANDLERS, return_exceptions=True), timeout=5)
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.concurrency))
