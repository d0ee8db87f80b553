"""Benchmark the workers: submit + finalize throughput through the Redis broker.

Real `genhub worker` processes (1, then 2) and one `genhub scheduler` run against a
fresh PostgreSQL database, with the simulated provider at zero delay
(SIMULATED_STEP_SECONDS=0, so every job is done by its first poll). The generations
are created first (QUEUED, their credits reserved, nothing kicked); the clock starts
when their submit messages are kicked and stops when the last one is SUCCEEDED with
its output copied and its cost captured. Scheduler ticks are whole seconds, so the
last tick adds up to a second: use enough generations to make that small.

    .venv/bin/python bench/worker.py [--count 1000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from taskiq.kicker import AsyncKicker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import drop_database, migrated_database  # noqa: E402
from domain.catalogue import ModelKind  # noqa: E402
from domain.use_cases import catalogue, credits  # noqa: E402
from domain.use_cases.generations import SUBMIT_TASK, GenerateRequest, generate  # noqa: E402
from domain.users import Principal, Role, User  # noqa: E402
from infrastructure.container import Container, open_container  # noqa: E402
from infrastructure.queue import build_broker  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402

REDIS_URL = os.environ.get("BENCH_WORKER_REDIS_URL", "redis://127.0.0.1:6379/11")
DB_NAME = "genhub_bench_worker"


class NoJobs:
    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        return None


def environment(db_url: str, storage: Path) -> dict[str, str]:
    own = ("DATABASE_", "REDIS_", "STORAGE_", "LOCAL_STORAGE", "SIMULATED_", "POLL_", "TASK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "ENVIRONMENT": "test",
            "DATABASE_URL": db_url,
            "REDIS_URL": REDIS_URL,
            "STORAGE_BACKEND": "local",
            "LOCAL_STORAGE_PATH": str(storage / "objects"),
            "DATA_DIR": str(storage / "data"),
            "SIMULATED_STEPS": "1",
            "SIMULATED_STEP_SECONDS": "0",
            "POLL_INTERVAL_SECONDS": "1",
            "SEED_DEMO": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextlib.contextmanager
def processes(env: dict[str, str], workers: int, log_dir: Path) -> Iterator[None]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in (("worker", ["worker", "--workers", str(workers)]), ("scheduler", ["scheduler"])):
            log = (log_dir / f"{name}-{workers}.log").open("wb")
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "entrypoints.cli", *args],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        time.sleep(4)  # imports, container start-up, consumer group
        yield
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def bench_container(env: dict[str, str]) -> AsyncIterator[Container]:
    keys = {k.lower(): v for k, v in env.items() if k.isupper() and k.lower() in Settings.model_fields}
    settings = Settings(_env_file=None, **keys)  # type: ignore[call-arg]
    broker = build_broker(settings)
    await broker.startup()
    try:
        async with open_container(settings, broker=broker) as container:
            yield container
    finally:
        await broker.shutdown()


async def queued_generations(c: Container, count: int) -> list[uuid.UUID]:
    """`count` QUEUED generations with their credits reserved; no submit kicked yet."""
    user = User(uuid.uuid4(), f"bench-{uuid.uuid4().hex[:8]}@example.com", Role.USER, c.clock.now(), "x")
    async with c.uow() as uow:
        await uow.users.add(user)
        await uow.credits.ensure_account(user.id)
        await uow.commit()
    await credits.grant(
        actor=None,
        user_id=user.id,
        amount=count,
        reason="bench",
        idempotency_key=None,
        uow=c.uow(),
        publisher=c.publisher,
        clock=c.clock,
    )
    model = await catalogue.upsert_model(
        actor=None,
        slug=f"bench-{uuid.uuid4().hex[:8]}",
        name="bench",
        provider="simulated",
        kind=ModelKind.IMAGE,
        cost_credits=1,
        capabilities={},
        is_active=True,
        known_providers=frozenset({"simulated"}),
        uow=c.uow(),
        catalogue=c.catalogue,
    )
    quiet = dataclasses.replace(c, jobs=NoJobs())
    principal = Principal(user.id, user.role)
    ids = []
    for i in range(count):
        g = await generate(
            principal=principal,
            request=GenerateRequest(model_id=model.id, prompt=f"bench {i}"),
            uow=quiet.uow(),
            starter=quiet.starter,
            catalogue=quiet.catalogue,
            jobs=quiet.jobs,
            publisher=quiet.publisher,
            clock=quiet.clock,
        )
        ids.append(g.id)
    return ids


async def count_by_status(c: Container, ids: list[uuid.UUID]) -> dict[str, int]:
    async with c.uow() as uow:
        rows = await uow.session.execute(
            text("select status, count(*) from generations where id = any(:ids) group by status"), {"ids": ids}
        )
        return {str(status): int(n) for status, n in rows.all()}


async def run_once(env: dict[str, str], workers: int, count: int, log_dir: Path) -> dict[str, float]:
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    with processes(env, workers, log_dir):
        async with bench_container(env) as c:
            ids = await queued_generations(c, count)
            kicker = AsyncKicker(task_name=SUBMIT_TASK, broker=c.broker, labels={})
            started = time.perf_counter()
            for gid in ids:
                await kicker.kiq(generation_id=str(gid))
            kicked = time.perf_counter() - started
            submitted_at: float | None = None
            while True:
                by_status = await count_by_status(c, ids)
                if submitted_at is None and by_status.get("queued", 0) + by_status.get("submitting", 0) == 0:
                    submitted_at = time.perf_counter() - started
                if by_status.get("succeeded", 0) == count:
                    break
                elapsed = time.perf_counter() - started
                if elapsed > 600 or by_status.get("failed", 0) or by_status.get("expired", 0):
                    raise SystemExit(f"{by_status} after {elapsed:.0f}s (see {log_dir})")
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            async with c.uow() as uow:
                captured = await uow.session.execute(
                    text("select count(*) from credit_ledger where kind = 'capture' and generation_id = any(:ids)"),
                    {"ids": ids},
                )
                assert captured.scalar_one() == count, "every generation captured exactly once"
    return {
        "workers": workers,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "kick_s": kicked,
        "submitted_s": submitted_at or elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    db_url = await migrated_database(DB_NAME)
    try:
        with tempfile.TemporaryDirectory(prefix="genhub-bench-worker-") as tmp:
            env = environment(db_url, Path(tmp))
            for workers in args.workers:
                result = await run_once(env, workers, args.count, Path(tmp))
                print(
                    f"workers={workers}  generations={args.count}  {result['seconds']:.2f}s  "
                    f"{result['per_second']:.1f} generations/s  (kicking {result['kick_s']:.2f}s, "
                    f"all submitted after {result['submitted_s']:.2f}s = {args.count / result['submitted_s']:.0f}/s)",
                    flush=True,
                )
    finally:
        await drop_database(DB_NAME)
    cores = os.cpu_count()
    print(f"(machine: {cores} cores; PostgreSQL, Redis, workers, scheduler and this script share them)")


if __name__ == "__main__":
    asyncio.run(main())
