"""Benchmark subscription fan-out: one `genhub serve`, S subscribers (WebSocket or SSE), events through Redis.

(a) Fan-out: S graphql-transport-ws connections, or S GraphQL over SSE streams
    (`--transport sse`; `both` runs each on a fresh server, one after the other) (default
    1,000 over 100 users, one `myGenerationEvents` subscription each) on ONE API process. A separate publisher
    process publishes K GenerationChanged events (PROCESSING with rising progress, one
    generation per user, round robin) at a fixed rate through Redis with
    BroadcastPublisher, exactly as a worker does. Latency = receive time at the client -
    the event's `at` (stamped just before PUBLISH). Prints p50/p99/max, delivered vs
    expected, and the server's RSS before and after.
(b) Leaks: N connect -> connection_init -> generationUpdated(id) -> first `next` ->
    disconnect cycles (half a polite close, half a dropped TCP connection), then the
    server's RSS along the way and PUBSUB NUMSUB of every user channel (must be 0).

With --churn-rate R, R other connections a second are opened and closed while (a) measures
(about --churn-pool open at a time; their deliveries not counted): the server's heap keeps
changing, and the report says how many full collections (reclaims) fell inside the window.
--diagnose and --census: bench/fanout_diagnosis.py.

Everything runs on loopback: a private redis-server (or --redis-url), a temporary
PostgreSQL database (dropped afterwards), the server and the publisher as subprocesses.
The set-up, the subscribers and part (b) are bench/fanout_setup.py, fanout_clients.py, fanout_cycles.py.

    .venv/bin/python bench/fanout.py [--subscribers 1000] [--users 100] [--events 4000]
                                     [--rate 200] [--cycles 10000] [--transport ws|sse|both]
                                     [--churn-rate 0] [--diagnose] [--census]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import drop_database, migrated_database  # noqa: E402
from bench.fanout_clients import (  # noqa: E402
    Subscriber,
    close_subscriber,
    numsub,
    open_sse_subscriber,
    open_subscriber,
    read,
)
from bench.fanout_cycles import cycles  # noqa: E402
from bench.fanout_diagnosis import Diagnosis, server_env  # noqa: E402
from bench.fanout_setup import Plan, private_redis, seed, serve  # noqa: E402
from bench.processes import cpu_seconds, rss_mib  # noqa: E402

SUBSCRIBE = "subscription { myGenerationEvents { at previousStatus generation { id status progress } } }"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------- (a) fan-out


async def fanout(
    args: argparse.Namespace,
    plan: Plan,
    url: str,
    redis_url: str,
    server: subprocess.Popen[bytes],
    transport: str = "ws",
) -> dict[str, Any]:
    rss_idle = rss_mib(server.pid)
    diagnosis = args.diagnosis
    if diagnosis:
        diagnosis.snapshot(server.pid)
        diagnosis.mark("connecting")
    subs = [Subscriber(user=i % args.users) for i in range(args.subscribers)]
    opener = open_sse_subscriber if transport == "sse" else open_subscriber
    if transport == "sse":
        url = url.replace("ws://", "http://", 1)
    started = time.monotonic()
    for start in range(0, len(subs), 100):  # connect in batches: a realistic ramp, not a SYN flood
        batch = subs[start : start + 100]
        await asyncio.gather(*(opener(url, plan.tokens[s.user], s, SUBSCRIBE, {}) for s in batch))
    readers = [asyncio.create_task(read(s)) for s in subs]
    channels = [f"user:{u}" for u in plan.users]
    while await numsub(redis_url, channels) < len(plan.users):
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - started
    # The subscribers' own heap (S connections) stays out of this process's collections, and
    # none runs while measuring (gc.disable below): a collection here stalls every reader, and
    # that is no latency of the server's.
    gc.collect()
    gc.freeze()
    await asyncio.sleep(1.0)
    plan_file = Path(args.tmp) / "plan.json"
    plan_file.write_text(json.dumps({"model": plan.model, "users": plan.users, "generations": plan.generations}))

    async def publish(events: int, offset: int) -> dict[str, Any]:
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "publish",
            "--redis-url",
            redis_url,
            "--plan",
            str(plan_file),
            "--events",
            str(events),
            "--offset",
            str(offset),
            "--rate",
            str(args.rate),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await publisher.communicate()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    # Warm-up: one event per generation (first reads of each row, the database pool's
    # connections, every operation's first execution); not measured, but reported.
    warmup_events = args.users * args.warmup_rounds
    if diagnosis:
        diagnosis.mark("warm-up")
    await publish(warmup_events, 0)
    deadline = time.monotonic() + 15
    while (
        sum(s.received for s in subs) < warmup_events * args.subscribers // args.users and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)
    warmup = [x for s in subs for x in s.latencies]
    for s in subs:
        s.received, s.latencies = 0, []
    await asyncio.sleep(0.5)
    rss_before = rss_mib(server.pid)
    if diagnosis and diagnosis.census:
        diagnosis.snapshot(server.pid)  # tracemalloc's snapshot takes a while: before measuring
        await asyncio.sleep(30)
    if diagnosis:
        diagnosis.mark("measuring")
    collector_before = await gc_metrics(url)
    cpu_before = cpu_seconds(server.pid)
    client_cpu_before = time.process_time()
    churn = asyncio.create_task(churning(args, plan, url, opener)) if args.churn_rate else None
    gc.disable()
    try:
        published = await publish(args.events, warmup_events)
        per_user = Counter(s.user for s in subs)
        expected = sum(per_user[i % args.users] for i in range(published["published"]))
        deadline = time.monotonic() + 10
        while sum(s.received for s in subs) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        gc.enable()
    churned = await stop_churning(churn)
    if diagnosis:
        diagnosis.mark("closing")
    cpu = cpu_seconds(server.pid) - cpu_before
    collector = await gc_metrics(url)
    client_cpu = time.process_time() - client_cpu_before
    rss_after = rss_mib(server.pid)
    latencies = [x for s in subs for x in s.latencies]
    for s in subs:
        await close_subscriber(s)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    deadline = time.monotonic() + 10
    while await numsub(redis_url, channels) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return {
        "transport": transport,
        "subscribers": args.subscribers,
        "users": args.users,
        "connect_s": connect_s,
        "published": published,
        "expected": expected,
        "delivered": len(latencies),
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "warmup_events": warmup_events,
        "warmup_p99_ms": pct(warmup, 0.99) * 1000,
        "warmup_max_ms": max(warmup, default=float("nan")) * 1000,
        "server_cpu_pct": cpu / published["seconds"] * 100,
        "server_cpu_ms_per_event": cpu / max(1, published["published"]) * 1000,
        "client_cpu_pct": client_cpu / published["seconds"] * 100,
        "rss_idle_mib": rss_idle,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "kib_per_subscriber": (rss_before - rss_idle) * 1024 / max(1, args.subscribers),
        "numsub_after_close": await numsub(redis_url, channels),
        "gc": collector,
        "reclaims_measuring": collector.get("reclaims_total", 0) - collector_before.get("reclaims_total", 0),
        "churned": churned,
    }


async def churning(args: argparse.Namespace, plan: Plan, url: str, opener: Any) -> int:
    """Connections opened and closed while measuring: `--churn-rate` a second, each reading its events
    for `--churn-pool / --churn-rate` seconds (so about `--churn-pool` are open at a time) and then
    closed; their deliveries are not counted. Returns how many were opened."""
    lifetime = args.churn_pool / args.churn_rate
    running: set[asyncio.Task[None]] = set()
    opened = 0

    async def one(user: int) -> None:
        sub = Subscriber(user=user)
        try:
            await asyncio.wait_for(opener(url, plan.tokens[user], sub, SUBSCRIBE, {}), 10)
        except Exception:
            return
        reader = asyncio.create_task(read(sub))
        try:
            await asyncio.sleep(lifetime)
        finally:
            reader.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(close_subscriber(sub), 2)

    try:
        while True:
            await asyncio.sleep(1 / args.churn_rate)
            task = asyncio.create_task(one(opened % args.users))
            opened += 1
            running.add(task)
            task.add_done_callback(running.discard)
    except asyncio.CancelledError:
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        return opened


async def stop_churning(task: asyncio.Task[int] | None) -> int:
    if task is None:
        return 0
    task.cancel()
    return await task


async def gc_metrics(url: str) -> dict[str, float]:
    """The server's collection pacer, from its /metrics (genhub_gc_*)."""
    base = url.replace("ws://", "http://", 1).rsplit("/graphql", 1)[0]
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{base}/metrics", timeout=30)).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("genhub_gc_"):
            name, value = line.split()
            found[name.removeprefix("genhub_gc_")] = float(value)
    return found


async def publish_main(args: argparse.Namespace) -> None:
    """The worker side: BroadcastPublisher on Redis, K events at a fixed rate, each with its snapshot."""
    from domain.events import GenerationChanged
    from domain.generations import Generation, GenerationStatus
    from infrastructure.pubsub import BoundedBroadcast, BroadcastPublisher, RedisPubSubBackend

    plan = json.loads(Path(args.plan).read_text())
    users = [uuid.UUID(u) for u in plan["users"]]
    generations = [uuid.UUID(g) for g in plan["generations"]]
    model_id = uuid.UUID(plan["model"])
    created = datetime.now(UTC)
    broadcast = BoundedBroadcast(backend=RedisPubSubBackend(args.redis_url))
    await broadcast.connect()
    publisher = BroadcastPublisher(broadcast)
    started = time.perf_counter()
    lag: list[float] = []
    for i in range(args.events):
        due = started + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag.append(-delay)
        k = i % len(users)
        # Rises for every generation across runs (offset): no event is a duplicate or stale.
        progress = ((args.offset + i) // len(users) + 1) / 1_000_000
        now = datetime.now(UTC)
        # As seeded (see seed()), at this progress: what the worker's set_progress returns.
        generation = Generation(
            generations[k],
            users[k],
            model_id,
            "bench",
            GenerationStatus.PROCESSING,
            created,
            now,
            progress=progress,
            reserved_credits=1,
            submit_attempts=1,
        )
        await publisher.publish(GenerationChanged.of(generation, GenerationStatus.PROCESSING, now))
    seconds = time.perf_counter() - started
    await broadcast.disconnect()
    print(
        json.dumps(
            {
                "published": publisher.published,
                "failures": publisher.failures,
                "seconds": seconds,
                "rate": publisher.published / seconds,
                "behind_schedule_max_ms": max(lag, default=0.0) * 1000,
            }
        )
    )


# ---------------------------------------------------------------- main


async def bench(args: argparse.Namespace) -> None:
    name = f"genhub_bench_fanout_{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        args.tmp = tmp_dir
        db_url = await migrated_database(name)
        try:
            plan = await seed(db_url, args.users)
            redis_ctx = contextlib.nullcontext(args.redis_url) if args.redis_url else private_redis(tmp)
            with redis_ctx as redis_url:
                print(
                    f"fan-out benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}, one API process, "
                    f"PostgreSQL + Redis on loopback"
                )
                transports = ["ws", "sse"] if args.transport == "both" else [args.transport]
                for transport in transports if args.subscribers else []:
                    args.diagnosis = Diagnosis(tmp, census=args.census) if args.diagnose or args.census else None
                    env = server_env(tmp, census=args.census) if args.diagnosis else {}
                    with serve(db_url, redis_url, tmp, env) as (server, url):  # a fresh process for each transport
                        result = await fanout(args, plan, url, redis_url, server, transport)
                    report_fanout(result)
                    if args.diagnosis:
                        args.diagnosis.report(server.pid)
                if args.cycles:
                    with serve(db_url, redis_url, tmp) as (server, url):
                        report_cycles(args, plan, await cycles(args, plan, url, redis_url, server))
        finally:
            await drop_database(name)


def report_fanout(r: dict[str, Any]) -> None:
    p = r["published"]
    name = {"ws": "WebSocket (graphql-transport-ws)", "sse": "Server-Sent Events"}[r["transport"]]
    print(
        f"\n(a) {name}: {r['subscribers']} subscribers over {r['users']} users (connected in {r['connect_s']:.1f} s); "
        f"{p['published']} events published at {p['rate']:.0f}/s ({p['failures']} failed)"
    )
    print(
        f"    delivered {r['delivered']} / expected {r['expected']}  "
        f"({'0 lost' if r['delivered'] >= r['expected'] else str(r['expected'] - r['delivered']) + ' lost'})"
    )
    print(
        f"    publish->receive latency  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
        f"max {r['max_ms']:.1f} ms  (mean {r['mean_ms']:.1f} ms)"
    )
    print(
        f"    warm-up ({r['warmup_events']} events, not counted): p99 {r['warmup_p99_ms']:.1f} ms, "
        f"max {r['warmup_max_ms']:.1f} ms"
    )
    print(
        f"    CPU while publishing: server {r['server_cpu_pct']:.0f}% "
        f"({r['server_cpu_ms_per_event']:.2f} ms per event), "
        f"subscribers' client {r['client_cpu_pct']:.0f}% of one core"
    )
    if r["churned"]:
        print(f"    while measuring, {r['churned']} other connections were opened and closed (not counted)")
    g = r["gc"]
    if g:
        print(
            f"    server's collection pacer: {g.get('paced_collections_total', 0):.0f} ticks, "
            f"{r['reclaims_measuring']:.0f} reclaims while measuring, "
            f"{g.get('freezes_total', 0):.0f} freezes, {g.get('reclaims_total', 0):.0f} reclaims "
            f"(last {g.get('last_reclaim_seconds', 0) * 1000:.0f} ms), next reclaim at "
            f"{g.get('reclaim_at_blocks', 0) / 1e6:.1f} M allocated blocks"
        )
    print(
        f"    server RSS  idle {r['rss_idle_mib']:.0f} MiB, with subscribers {r['rss_before_mib']:.0f} MiB "
        f"({r['kib_per_subscriber']:.0f} KiB per subscriber), after the events {r['rss_after_mib']:.0f} MiB; "
        f"PUBSUB NUMSUB after closing: {r['numsub_after_close']}"
    )


def report_cycles(args: argparse.Namespace, plan: Plan, c: dict[str, Any]) -> None:
    samples = ", ".join(f"{n}: {m:.0f}" for n, m in c["rss_samples"])
    print(
        f"\n(b) {c['cycles']} connect -> subscribe -> first event -> disconnect cycles "
        f"({args.concurrency} at a time, {c['per_second']:.0f}/s), failures: {c['failures'] or 'none'}"
    )
    print(f"    server RSS (MiB) after N cycles: {samples}")
    print(
        f"    PUBSUB NUMSUB of the {len(plan.users)} user channels after: {c['numsub_after']}; "
        f"user:* channels left in Redis: {c['user_channels_left']}"
    )


def main() -> int:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    if sys.argv[1:2] == ["publish"]:  # (internal) the publisher process
        pub = argparse.ArgumentParser(prog="fanout.py publish")
        pub.add_argument("--redis-url", required=True)
        pub.add_argument("--plan", required=True)
        pub.add_argument("--events", type=int, required=True)
        pub.add_argument("--rate", type=float, required=True)
        pub.add_argument("--offset", type=int, default=0, help="events published before (progress keeps rising)")
        runner(publish_main(pub.parse_args(sys.argv[2:])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000, help="subscribers (S); 0: skip (a)")
    parser.add_argument(
        "--transport", choices=["ws", "sse", "both"], default="ws", help="graphql-transport-ws, SSE, or each in turn"
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--events", type=int, default=4000, help="events to publish (K)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="unmeasured events per generation first")
    parser.add_argument("--cycles", type=int, default=10_000, help="connect/disconnect cycles; 0: skip (b)")
    parser.add_argument("--concurrency", type=int, default=50, help="cycles in flight at once")
    parser.add_argument(
        "--churn-rate", type=float, default=0.0, help="other connections opened per second while measuring"
    )
    parser.add_argument("--churn-pool", type=int, default=200, help="churned connections open at a time (about)")
    parser.add_argument(
        "--diagnose", action="store_true", help="show every garbage collection of server and client by phase"
    )
    parser.add_argument(
        "--census", action="store_true", help="--diagnose, and the server's objects by type and top allocation sites"
    )
    parser.add_argument("--redis-url", default="", help="default: a private redis-server on a free port")
    runner(bench(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
