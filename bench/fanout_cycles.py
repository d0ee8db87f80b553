"""Part (b) of bench/fanout.py: connect -> subscribe -> first event -> disconnect, many times, watching for leaks."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from collections import Counter
from typing import Any

from redis.asyncio import Redis

from bench.fanout_clients import Subscriber, numsub, open_subscriber
from bench.fanout_setup import Plan
from bench.processes import rss_mib

WATCH = "subscription ($id: ID!) { generationUpdated(id: $id) { at generation { id status } } }"


async def cycles(
    args: argparse.Namespace, plan: Plan, url: str, redis_url: str, server: subprocess.Popen[bytes]
) -> dict[str, Any]:
    done = 0
    failures: Counter[str] = Counter()
    samples: list[tuple[int, float]] = [(0, rss_mib(server.pid))]
    marks = {args.cycles * k // 4 for k in range(1, 5)}

    async def one(i: int) -> None:
        user = i % len(plan.users)
        sub = Subscriber(user=user)
        try:
            await open_subscriber(url, plan.tokens[user], sub, WATCH, {"id": plan.generations[user]})
            first = json.loads(await asyncio.wait_for(sub.ws.recv(), 10))
            if first.get("type") != "next":
                failures[f"first message {first.get('type')}"] += 1
        except Exception as exc:
            failures[type(exc).__name__] += 1
        finally:
            if sub.ws is not None:
                if i % 2:
                    await sub.ws.close()
                else:
                    sub.ws.transport.abort()  # a client that vanishes without a close frame

    async def lane(lane_no: int) -> None:
        nonlocal done
        for i in range(lane_no, args.cycles, args.concurrency):
            await one(i)
            done += 1
            if done in marks:
                samples.append((done, rss_mib(server.pid)))

    started = time.monotonic()
    await asyncio.gather(*(lane(n) for n in range(args.concurrency)))
    seconds = time.monotonic() - started
    channels = [f"user:{u}" for u in plan.users]
    deadline = time.monotonic() + 15
    while await numsub(redis_url, channels) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    samples.append((done, rss_mib(server.pid)))
    redis = Redis.from_url(redis_url)
    try:
        leftover = len(await redis.pubsub_channels("user:*"))
    finally:
        await redis.aclose()
    return {
        "cycles": done,
        "seconds": seconds,
        "per_second": done / seconds,
        "failures": dict(failures),
        "rss_samples": samples,
        "numsub_after": await numsub(redis_url, channels),
        "user_channels_left": leftover,
    }
