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
import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk_rounds  # noqa: E402
from bench.databases import migrated_database  # noqa: E402
from bench.generate_report import report  # noqa: E402
from bench.processes import free_port  # noqa: E402

DB_NAME = "genhub_bench"
SECRET = "bench-secret-" + "x" * 40


async def reset_redis() -> None:
    """The benchmark's Redis database starts empty too (the queue streams keep 100,000 entries each)."""
    from redis.asyncio import Redis

    client = Redis.from_url(wrk_rounds.REDIS_URL)
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
POOL_PER_PROCESS = 12


def server(kind: str, url: str, port: int, processes: int = 1) -> AbstractContextManager[subprocess.Popen[bytes]]:
    env = {
        "BENCH_BASELINE_WORK": "sql" if kind == "baseline-sql" else "all",
        **wrk_rounds.server_env(
            database_url=url,
            jwt_secret=SECRET,
            RATE_LIMIT_GENERATE="100000000",
            # Every server stays up for the whole run: pools sized so that three of them, with
            # --processes 2, stay under PostgreSQL's 100 connections (12 per process is far more
            # than 64 clients need for statements of a millisecond).
            BENCH_POOL_SIZE=str(POOL_PER_PROCESS),
            DATABASE_START_POOL_SIZE=str(POOL_PER_PROCESS),
            DATABASE_POOL_SIZE="4",
            DATABASE_MAX_OVERFLOW="4",
            PORT=str(port),
        ),
    }
    if kind == "genhub":
        cmd = [wrk_rounds.GENHUB, "serve", "--port", str(port), "--workers", str(processes)]
        ready = f"http://127.0.0.1:{port}/health"
    else:
        cmd = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port), "--log-level", "warning"]
        cmd += ["--workers", str(processes)]
        ready = f"http://127.0.0.1:{port}/docs"
    return wrk_rounds.running(kind, cmd, env, ready)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wrk_rounds.round_options(parser, variant="server", clients=64, rounds=3, rate=500.0, warmup=3)
    parser.add_argument("--processes", type=int, default=1, help="API processes of each server")
    parser.add_argument("--servers", nargs="+", choices=KINDS, default=list(KINDS), help="which servers to run")
    args = parser.parse_args()
    if not wrk_rounds.wrk_installed():
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
    ports: dict[str, int] = {}

    def run(kind: str, seconds: int, think: float) -> dict[str, float]:
        env = {"BENCH_TOKENS": f.name, "BENCH_MODEL": model, "BENCH_THINK_MS": str(think)}
        url = f"http://127.0.0.1:{ports[kind]}"
        return wrk_rounds.run_wrk(url, "wrk_generate.lua", clients=args.clients, duration=seconds, env=env, threads=2)

    with contextlib.ExitStack() as stack:
        # All servers stay up (idle ones cost nothing) and take turns, round after round: every
        # server meets the same machine, the same table sizes and the same Redis state.
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for kind in kinds:  # each port taken just before its server binds it
            ports[kind] = free_port()
            procs[kind] = stack.enter_context(server(kind, url, ports[kind], args.processes))
        runs = wrk_rounds.take_turns(
            procs,
            run,
            warmup=args.warmup,
            duration=args.duration,
            rounds=args.rounds,
            modes=args.modes,
            think_ms=think_ms,
        )
    report(kinds, runs, args)
    os.unlink(f.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
