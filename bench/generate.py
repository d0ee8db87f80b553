"""Benchmark `generate`: the real server (uvicorn, PostgreSQL, Redis queue) against plain FastAPI baselines.

Three servers in the same run (bench/baseline_app.py has the baselines):
  baseline      a plain route doing the same I/O as genhub: rate-limit script, the same
                SQL, the queue XADD, the two event PUBLISHes (the ratio's reference);
  baseline-sql  a plain route doing the same SQL and the XADD only;
  genhub        `genhub serve`.
Two measurements of each:
  (a) saturated throughput: `--clients` connections with no think time (closed loop);
  (b) latency at a fixed offered load: the same clients with random exponential think
      time so that together they offer about `--rate` requests/s.
All servers run side by side and take turns for `--rounds` rounds (this machine's speed
drifts by tens of percent over a minute); the report gives each server's median run (by
throughput), the median of the per-round throughput ratios, and for the paced runs the
median of each latency percentile over the rounds.
Load comes from Debian's `wrk` (C, little CPU); its CPU time is printed too, and so is
each server's CPU time per request.

    .venv/bin/python bench/generate.py [--clients 64] [--duration 5] [--rounds 3] [--rate 500] [--processes 1]
                                       [--servers ...] [--modes saturated paced]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import migrated_database  # noqa: E402
from bench.generate_report import report  # noqa: E402
from bench.processes import free_port, tree_cpu_seconds  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DB_NAME = "genhub_bench"
SECRET = "bench-secret-" + "x" * 40


async def reset_redis() -> None:
    """The benchmark's Redis database starts empty too (the queue streams keep 100,000 entries each)."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def reset_database() -> str:
    await reset_redis()
    return await migrated_database(DB_NAME)


async def seed(url: str, users: int) -> tuple[str, list[str]]:
    """A model of cost 1 and `users` accounts with plenty of credits; returns (model id, tokens)."""
    from domain.catalogue import ModelKind
    from domain.users import Role
    from infrastructure.db.engine import create_engine, create_session_factory
    from infrastructure.db.uow import SqlUnitOfWorkFactory
    from infrastructure.security.tokens import TokenService
    from infrastructure.settings import Settings

    settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET)  # type: ignore[call-arg]
    engine = create_engine(settings)
    uow = SqlUnitOfWorkFactory(create_session_factory(engine))
    tokens = TokenService.from_settings(settings)
    tokens.access_ttl = 3 * 3600
    model_id = uuid.uuid4()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "INSERT INTO models (id, slug, name, provider, kind, cost_credits, capabilities, is_active, created_at, updated_at)"
            " VALUES ($1, 'bench', 'Bench', 'simulated', $2, 1, '{}', true, now(), now())",
            model_id,
            ModelKind.IMAGE.value,
        )
        issued: list[str] = []
        for i in range(users):
            user_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, 'x', 'user', now())",
                user_id,
                f"bench{i}@example.com",
            )
            await conn.execute(
                "INSERT INTO credit_accounts (user_id, balance, reserved, version) VALUES ($1, 100000000, 0, 0)",
                user_id,
            )
            await conn.execute(
                "INSERT INTO credit_ledger (id, user_id, kind, amount, idempotency_key, created_at)"
                " VALUES ($1, $2, 'grant', 100000000, $3, now())",
                uuid.uuid4(),
                user_id,
                f"bench-grant-{user_id}",
            )
            issued.append(tokens.issue_access(user_id, Role.USER).token)
    finally:
        await conn.close()
    del uow
    await engine.dispose()
    return str(model_id), issued


KINDS = ("baseline-sql", "baseline", "genhub")
MODES = ("saturated", "paced")
POOL_PER_PROCESS = 12


@contextmanager
def server(kind: str, url: str, port: int, processes: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        "BENCH_BASELINE_WORK": "sql" if kind == "baseline-sql" else "all",
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": SECRET,
        "ENVIRONMENT": "development",
        "SEED_DEMO": "false",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "RATE_LIMIT_GENERATE": "100000000",
        # Every server stays up for the whole run: pools sized so that three of them, with
        # --processes 2, stay under PostgreSQL's 100 connections (12 per process is far more
        # than 64 clients need for statements of a millisecond).
        "BENCH_POOL_SIZE": str(POOL_PER_PROCESS),
        "DATABASE_START_POOL_SIZE": str(POOL_PER_PROCESS),
        "DATABASE_POOL_SIZE": "4",
        "DATABASE_MAX_OVERFLOW": "4",
        "PORT": str(port),
    }
    if kind == "genhub":
        cmd = [str(Path(sys.executable).with_name("genhub")), "serve", "--port", str(port), "--workers", str(processes)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
        cmd += ["--workers", str(processes)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(
                    f"http://127.0.0.1:{port}/health" if kind == "genhub" else f"http://127.0.0.1:{port}/docs",
                    timeout=1,
                )
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(
                        f"{kind} did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                    ) from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_wrk(port: int, clients: int, duration: int, think_ms: float, tokens_file: str, model: str) -> dict[str, float]:
    env = {**os.environ, "BENCH_TOKENS": tokens_file, "BENCH_MODEL": model, "BENCH_THINK_MS": str(think_ms)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(ROOT / "bench" / "wrk_generate.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server and mode, interleaved")
    parser.add_argument("--rate", type=float, default=500.0, help="offered requests/s for the latency run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="API processes of each server")
    parser.add_argument("--servers", nargs="+", choices=KINDS, default=list(KINDS), help="which servers to run")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="which measurements to take")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return 2
    url = asyncio.run(reset_database())
    model, tokens = asyncio.run(seed(url, args.clients))
    think_ms = args.clients / args.rate * 1000
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as f:
        f.write("\n".join(tokens) + "\n")
    print(
        f"generate benchmark: {args.clients} clients, {args.rounds} rounds of {args.duration}s per server and mode, "
        f"{args.processes} API process(es) each, {os.cpu_count()} cores, PostgreSQL + Redis local"
    )
    kinds = [k for k in KINDS if k in args.servers]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {k: {"saturated": [], "paced": []} for k in kinds}
    with contextlib.ExitStack() as stack:
        # All servers stay up (idle ones cost nothing) and take turns, round after round: every
        # server meets the same machine, the same table sizes and the same Redis state.
        procs = {}
        for kind in kinds:
            port = free_port()
            procs[kind] = (port, stack.enter_context(server(kind, url, port, args.processes)))
            run_wrk(port, args.clients, args.warmup, 0, f.name, model)  # warm-up: pools and caches
        for _ in range(args.rounds):
            for mode in (m for m in MODES if m in args.modes):
                think = think_ms if mode == "paced" else 0.0
                for kind in kinds:
                    port, proc = procs[kind]
                    cpu0 = tree_cpu_seconds(proc.pid)
                    r = run_wrk(port, args.clients, args.duration, think, f.name, model)
                    r["server_cpu_s"] = tree_cpu_seconds(proc.pid) - cpu0
                    runs[kind][mode].append(r)
    report(kinds, runs, args)
    os.unlink(f.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
