"""Benchmark subscription fan-out: one `genhub serve`, S WebSocket subscribers, events through Redis.

(a) Fan-out: S graphql-transport-ws connections (default 1,000 over 100 users, one
    `myGenerationEvents` subscription each) on ONE API process. A separate publisher
    process publishes K GenerationChanged events (PROCESSING with rising progress, one
    generation per user, round robin) at a fixed rate through Redis with
    BroadcastPublisher, exactly as a worker does. Latency = receive time at the client -
    the event's `at` (stamped just before PUBLISH). Prints p50/p99/max, delivered vs
    expected, and the server's RSS before and after.
(b) Leaks: N connect -> connection_init -> generationUpdated(id) -> first `next` ->
    disconnect cycles (half a polite close, half a dropped TCP connection), then the
    server's RSS along the way and PUBSUB NUMSUB of every user channel (must be 0).

Everything runs on loopback: a private redis-server (or --redis-url), a temporary
PostgreSQL database (dropped afterwards), the server and the publisher as subprocesses.

    .venv/bin/python bench/fanout.py [--subscribers 1000] [--users 100] [--events 4000]
                                     [--rate 200] [--cycles 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets
from redis.asyncio import Redis

PG_ADMIN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-fanout-secret-" + "x" * 40
SUBSCRIBE = "subscription { myGenerationEvents { at previousStatus generation { id status progress } } }"
COMPRESSION = os.environ.get("BENCH_WS_COMPRESSION", "1") == "1"
WATCH = "subscription ($id: ID!) { generationUpdated(id: $id) { at generation { id status } } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------- set-up


@dataclass
class Plan:
    model: str
    users: list[str]
    generations: list[str]
    tokens: list[str]


async def create_database(name: str) -> str:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    from infrastructure.migrations.runner import upgrade

    await upgrade(url)
    return url


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def seed(url: str, users: int) -> Plan:
    """`users` accounts with one PROCESSING generation each, and a 6-hour token per user."""
    from domain.users import Role
    from infrastructure.security.tokens import TokenService

    tokens = TokenService(
        algorithm="HS256",
        signing_key=SECRET,
        verifying_key=SECRET,
        issuer="genhub",
        access_ttl=6 * 3600,
        refresh_ttl=60,
    )
    model_id = uuid.uuid4()
    plan = Plan(str(model_id), [], [], [])
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "INSERT INTO models (id, slug, name, provider, kind, cost_credits, capabilities, is_active, created_at, updated_at)"
            " VALUES ($1, 'bench', 'Bench', 'simulated', 'image', 1, '{}', true, now(), now())",
            model_id,
        )
        for i in range(users):
            user_id, generation_id = uuid.uuid4(), uuid.uuid4()
            await conn.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, 'x', 'user', now())",
                user_id,
                f"fanout{i}@example.com",
            )
            await conn.execute(
                "INSERT INTO generations (id, user_id, model_id, prompt, params, status, progress, reserved_credits,"
                " charged_credits, submit_attempts, created_at, updated_at)"
                " VALUES ($1, $2, $3, 'bench', '{}', 'processing', 0, 1, 0, 1, now(), now())",
                generation_id,
                user_id,
                model_id,
            )
            plan.users.append(str(user_id))
            plan.generations.append(str(generation_id))
            plan.tokens.append(tokens.issue_access(user_id, Role.USER).token)
    finally:
        await conn.close()
    return plan


@contextlib.contextmanager
def private_redis(tmp: Path) -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: pass --redis-url")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def serve(db_url: str, redis_url: str, tmp: Path) -> Any:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))},
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": SECRET,
        "ENVIRONMENT": "test",
        "SEED_DEMO": "false",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "console",
        "LOCAL_STORAGE_PATH": str(tmp / "chunks"),
        "DATA_DIR": str(tmp / "data"),
    }
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("genhub")), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("genhub serve did not start:\n" + (tmp / "serve.log").read_text())
            time.sleep(0.2)
        yield proc, f"ws://127.0.0.1:{port}/graphql"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ---------------------------------------------------------------- clients


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


# ---------------------------------------------------------------- (a) fan-out


async def fanout(
    args: argparse.Namespace, plan: Plan, url: str, redis_url: str, server: subprocess.Popen[bytes]
) -> dict[str, Any]:
    rss_idle = rss_mib(server.pid)
    subs = [Subscriber(user=i % args.users) for i in range(args.subscribers)]
    started = time.monotonic()
    for start in range(0, len(subs), 100):  # connect in batches: a realistic ramp, not a SYN flood
        batch = subs[start : start + 100]
        await asyncio.gather(*(open_subscriber(url, plan.tokens[s.user], s, SUBSCRIBE, {}) for s in batch))
    readers = [asyncio.create_task(read(s)) for s in subs]
    channels = [f"user:{u}" for u in plan.users]
    while await numsub(redis_url, channels) < len(plan.users):
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - started
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
    cpu_before = cpu_seconds(server.pid)
    client_cpu_before = time.process_time()
    published = await publish(args.events, warmup_events)
    per_user = Counter(s.user for s in subs)
    expected = sum(per_user[i % args.users] for i in range(published["published"]))
    deadline = time.monotonic() + 10
    while sum(s.received for s in subs) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    cpu = cpu_seconds(server.pid) - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    rss_after = rss_mib(server.pid)
    latencies = [x for s in subs for x in s.latencies]
    for s in subs:
        await s.ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    deadline = time.monotonic() + 10
    while await numsub(redis_url, channels) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return {
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
        "numsub_after_close": await numsub(redis_url, channels),
    }


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


# ---------------------------------------------------------------- (b) connect/disconnect cycles


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


# ---------------------------------------------------------------- main


async def bench(args: argparse.Namespace) -> None:
    name = f"genhub_bench_fanout_{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        args.tmp = tmp_dir
        db_url = await create_database(name)
        try:
            plan = await seed(db_url, args.users)
            redis_ctx = contextlib.nullcontext(args.redis_url) if args.redis_url else private_redis(tmp)
            with redis_ctx as redis_url, serve(db_url, redis_url, tmp) as (server, url):
                print(
                    f"fan-out benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}, one API process, "
                    f"PostgreSQL + Redis on loopback"
                )
                if args.subscribers:
                    r = await fanout(args, plan, url, redis_url, server)
                    p = r["published"]
                    print(
                        f"\n(a) {r['subscribers']} subscribers over {r['users']} users (connected in {r['connect_s']:.1f} s); "
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
                    print(
                        f"    server RSS  idle {r['rss_idle_mib']:.0f} MiB, with subscribers {r['rss_before_mib']:.0f} MiB, "
                        f"after the events {r['rss_after_mib']:.0f} MiB; PUBSUB NUMSUB after closing: {r['numsub_after_close']}"
                    )
                if args.cycles:
                    c = await cycles(args, plan, url, redis_url, server)
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
        finally:
            await drop_database(name)


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
    parser.add_argument("--subscribers", type=int, default=1000, help="WebSocket subscribers (S); 0: skip (a)")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--events", type=int, default=4000, help="events to publish (K)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="unmeasured events per generation first")
    parser.add_argument("--cycles", type=int, default=10_000, help="connect/disconnect cycles; 0: skip (b)")
    parser.add_argument("--concurrency", type=int, default=50, help="cycles in flight at once")
    parser.add_argument("--redis-url", default="", help="default: a private redis-server on a free port")
    runner(bench(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
