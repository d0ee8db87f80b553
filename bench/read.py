"""Read benchmark (issue #17): the history page on genhub, PostGraphile 4.14 and the floor.

The page: the viewer's latest 20 generations with their model and outputs (genhub:
`generations(first: 20) { edges { node { id status prompt createdAt model { slug
costCredits } outputs { id kind size } } } }`; PostGraphile: `allGenerations(first: 20,
orderBy: CREATED_AT_DESC, condition: {userId})` with the model and the assets).

    .venv/bin/python bench/read.py [--rounds 3] [--duration 10] [--warmup 2] [--prime 10]
        [--connections 16] [--rate 500] [--rate-connections 64] [--servers postgraphile floor genhub]
        [--sqlite also|only|skip]

`--servers ... genhub-resolvers` adds genhub with COMPILED_READS=false beside the others: the same
page through the resolvers and their loaders (one read scope per request), on the same rows.

What it does, all on loopback, every server one process in its own process group:
1. creates and seeds two PostgreSQL databases with the same rows (bench/read_seed.py: 50
   users, the viewer owning 2,000 generations, 10 models, 20,000 generations with 2 assets
   each): `genhub_read_plain`, the plain schema PostGraphile and the floor read, and
   `genhub_read`, genhub's own (`genhub migrate`, then its tables); empties Redis DB 13;
2. starts PostGraphile 4.14.1 (bench/postgraphile, `npm ci` on first use), the floor
   (bench/read_floor.py: uvicorn, raw asyncpg, orjson, no GraphQL engine) and `genhub serve`
   in production mode (PostgreSQL, Redis, default logging); genhub's bearer token comes
   from its own `login` mutation (a fresh one each round: tokens live 15 minutes);
3. checks every answer against its database (the same 20 generations, the same fields),
   that the three answers agree and that the floor's bytes are PostGraphile's, before any
   load; primes each server for --prime s;
4. for --rounds rounds, runs each server in turn (the machine's speed drifts; interleaving
   lets the drift hit all alike), each run after a --warmup s run that is not counted:
   (a) saturated: --connections connections, closed loop (latency there is queueing);
   (b) capped: --rate-connections connections with exponential think time (mean
       connections / rate) offering about --rate requests/s;
   load from wrk (bench/wrk_read.lua, one thread), server CPU from /proc of its group;
5. with --sqlite also|only: the same page on genhub's embedded default (`make run`'s
   settings: SQLite in a fresh data directory, no Redis, development), the same rows, its
   embedded poller idle (the seeded in-flight generations are long past their deadline: a
   live poller would expire all 2,000 (releasing their holds) in the first rounds, and the
   page's answers would then differ from the other servers').

It prints, per load: each server's req/s, p50/p99, CPU ms per request (medians over the
rounds), and the ratios genhub/PostGraphile and genhub/floor (median and per round).
Targets (issue #17): saturated req/s >= 1.2x PostGraphile; p99 <= 10 ms at the capped load.
Needs wrk, node/npm, PostgreSQL (BENCH_POSTGRES_DSN) and Redis (BENCH_READ_REDIS_URL) up.
Run files (server logs, bodies, the SQLite data directory) go to bench/.run/read/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import read_seed, read_verify  # noqa: E402
from bench.read_servers import Server, free_port, machine_busy, post, process_group, run_wrk  # noqa: E402

RUN = ROOT / "bench" / ".run" / "read"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_READ_REDIS_URL", "redis://127.0.0.1:6379/13")
PLAIN_DB, GENHUB_DB, FIRST = "genhub_read_plain", "genhub_read", 20
SECRET = "read-bench-secret-" + "x" * 40
PG_BIN = ROOT / "bench" / "postgraphile" / "node_modules" / ".bin" / "postgraphile"
GENHUB_QUERY = (
    "query LatestGenerations($first: Int!) { generations(first: $first) { edges { node { id status prompt"
    " createdAt model { slug costCredits } outputs { id kind size } } } } }"
)
PLAIN_QUERY = (
    "query LatestGenerations($userId: UUID!, $first: Int!) { allGenerations(first: $first,"
    " orderBy: [CREATED_AT_DESC], condition: { userId: $userId }) { nodes { id status prompt createdAt"
    " modelByModelId { slug costCredits } assetsByGenerationId { nodes { id kind size } } } } }"
)
LOGIN = (
    "mutation Login($i: LoginInput!) { login(input: $i) { __typename ... on AuthPayload { accessToken }"
    " ... on Error { code message } } }"
)


#: genhub as it serves (compiled reads on PostgreSQL), and with COMPILED_READS=false (the resolver path).
GENHUBS = ("genhub", "genhub-resolvers")


def write_bodies() -> tuple[Path, Path]:
    genhub, plain = RUN / "body_genhub.json", RUN / "body_postgraphile.json"
    genhub.write_text(json.dumps({"query": GENHUB_QUERY, "variables": {"first": FIRST}}))
    variables = {"userId": str(read_seed.BENCH_USER_ID), "first": FIRST}
    plain.write_text(json.dumps({"query": PLAIN_QUERY, "variables": variables}))
    return genhub, plain


async def prepare_postgres(data: read_seed.DataSet) -> tuple[str, str]:
    """Fresh databases with the same rows; returns (plain DSN, genhub's SQLAlchemy URL)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()  # login and rate-limit counters of earlier runs
    await redis.aclose()
    plain = await read_seed.recreate_database(PG_ADMIN, PLAIN_DB)
    await read_seed.seed_plain(plain, data)
    genhub = (await read_seed.recreate_database(PG_ADMIN, GENHUB_DB)).replace("postgresql://", "postgresql+asyncpg://")
    read_seed.genhub_migrate({**os.environ, "DATABASE_URL": genhub}, ROOT)
    await read_seed.seed_genhub(genhub, data)
    await read_seed.analyze(genhub)
    return plain, genhub


def genhub_env(database_url: str | None, port: int, *, compiled: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT")}
    if database_url is None:  # `make run`: SQLite in the data directory, everything in one process
        # with its embedded poller idle: settling the seeded in-flight generations (long past
        # their deadline) is not the page (PostgreSQL's genhub runs no worker at all)
        return env | {"DATA_DIR": str(RUN / "sqlite"), "SEED_DEMO": "false", "POLL_INTERVAL_SECONDS": "86400"}
    served = env | {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": SECRET,
        "LOCAL_STORAGE_PATH": str(RUN / "storage"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    if not compiled:  # else the caller's environment decides (bench/read_profile.py sets it)
        served["COMPILED_READS"] = "false"
    return served


def login(url: str) -> str:
    variables = {"i": {"email": read_seed.BENCH_EMAIL, "password": read_seed.BENCH_PASSWORD}}
    answer = json.loads(post(url, json.dumps({"query": LOGIN, "variables": variables}).encode()))
    result = (answer.get("data") or {}).get("login") or {}
    if result.get("__typename") != "AuthPayload":
        raise RuntimeError(f"genhub's login failed: {answer}")
    return "Bearer " + str(result["accessToken"])


def start_genhub(stack: ExitStack, name: str, database_url: str | None, body: Path, *, compiled: bool = True) -> Server:
    port = free_port()
    cmd = [
        str(ROOT / ".venv" / "bin" / "genhub"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    probe = f"http://127.0.0.1:{port}/health"
    pgid = stack.enter_context(
        process_group(name, cmd, genhub_env(database_url, port, compiled=compiled), ROOT, RUN / f"{name}.log", probe)
    )
    server = Server(name, f"http://127.0.0.1:{port}/graphql", body, pgid)
    server.auth = login(server.url)
    return server


def start_servers(stack: ExitStack, names: list[str], plain: str, genhub_url: str) -> list[Server]:
    genhub_body, plain_body = write_bodies()
    servers = []
    for name in names:
        if name.startswith("genhub"):
            servers.append(start_genhub(stack, name, genhub_url, genhub_body, compiled=name == "genhub"))
            continue
        port = free_port()
        if name == "postgraphile":
            if not PG_BIN.exists():
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PG_BIN.parents[2], check=True)
            cmd = [str(PG_BIN), "-c", plain, "--schema", "public", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--dynamic-json", "--no-setof-functions-contain-nulls", "--no-ignore-rbac"]
            cmd += ["--disable-query-log", "--disable-graphiql", "--max-pool-size", "10"]
            env, probe = {**os.environ, "NODE_ENV": "production"}, f"http://127.0.0.1:{port}/graphql"
        else:
            cmd = [sys.executable, "-m", "uvicorn", "bench.read_floor:app", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--no-access-log", "--log-level", "warning"]
            env, probe = {**os.environ, "READ_FLOOR_DSN": plain}, f"http://127.0.0.1:{port}/health"
        pgid = stack.enter_context(process_group(name, cmd, env, ROOT, RUN / f"{name}.log", probe))
        servers.append(Server(name, f"http://127.0.0.1:{port}/graphql", plain_body, pgid))
    return servers


def check_answers(servers: list[Server], expected: dict[str, list[read_verify.Row]]) -> None:
    answers, answers_raw = {}, {}
    for s in servers:
        raw = answers_raw[s.name] = post(s.url, s.body_file.read_bytes(), s.auth)
        print("  verified " + read_verify.verify(s.name, raw, expected[s.name], FIRST))
        answers[s.name] = read_verify.normalize(raw)
    if any(rows != next(iter(answers.values())) for rows in answers.values()):
        raise SystemExit(f"the servers' answers differ from each other: {sorted(answers)}")
    if len({answers_raw[n] for n in ("postgraphile", "floor") if n in answers_raw}) > 1:
        raise SystemExit("the floor's JSON differs from PostGraphile's (bytes)")


def measure(servers: list[Server], args: argparse.Namespace) -> None:
    think_ms = args.rate_connections / args.rate * 1000
    loads = {"saturated": (args.connections, 0.0), "capped": (args.rate_connections, think_ms)}
    for s in servers:
        run_wrk(s, args.connections, args.prime)  # priming: pools, caches, JIT; not counted
    for n in range(1, args.rounds + 1):
        for s in servers:
            if s.name.startswith("genhub"):
                s.auth = login(s.url)
        for mode, (connections, think) in loads.items():
            for s in servers:
                run_wrk(s, connections, args.warmup, think)
                r = run_wrk(s, connections, args.duration, think)
                s.runs.setdefault(mode, []).append(r)
                print(f"  round {n} {mode:<9} {fmt(s.name, [r])}", flush=True)


def med(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def fmt(name: str, runs: list[dict[str, float]]) -> str:
    return (
        f"{name:<14}{med(runs, 'rps'):>8.0f}{med(runs, 'p50_us') / 1000:>9.2f}{med(runs, 'p99_us') / 1000:>9.2f}"
        f"{med(runs, 'cpu_ms_per_req'):>12.3f}{med(runs, 'server_cpu_pct'):>10.0f}%"
        f"{sum(int(r['errors']) for r in runs):>8}{med(runs, 'wrk_cpu_pct'):>6.0f}%"
    )


HEADER = f"{'server':<14}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'srv CPU':>11}{'errors':>8}{'wrk':>7}"


def ratios(genhub: Server, other: Server, mode: str, key: str) -> str:
    each = [g[key] / o[key] for g, o in zip(genhub.runs[mode], other.runs[mode], strict=True)]
    return f"{statistics.median(each):.2f} (rounds {' '.join(f'{x:.2f}' for x in each)})"


def report(servers: list[Server], args: argparse.Namespace) -> None:
    think_ms = args.rate_connections / args.rate * 1000
    titles = {
        "saturated": f"(a) saturated: {args.connections} connections, closed loop",
        "capped": f"(b) capped: {args.rate_connections} connections offering ~{args.rate:.0f} req/s"
        f" (exponential think time, mean {think_ms:.0f} ms)",
    }
    by_name = {s.name: s for s in servers}
    for mode, title in titles.items():
        print(f"\n{title}; medians of {args.rounds} rounds of {args.duration:.0f} s\n{HEADER}")
        for s in servers:
            print(fmt(s.name, s.runs[mode]))
        for g in (by_name[n] for n in GENHUBS if n in by_name):
            report_genhub(g, [by_name[n] for n in ("postgraphile", "floor", "genhub") if n in by_name], mode)


def report_genhub(g: Server, others: list[Server], mode: str) -> None:
    for other in (o for o in others if o is not g):
        print(
            f"{g.name}/{other.name}: req/s {ratios(g, other, mode, 'rps')}; "
            f"CPU per request {ratios(g, other, mode, 'cpu_ms_per_req')}"
            + (f"; p99 {ratios(g, other, mode, 'p99_us')}" if mode == "capped" else "")
        )
    target = "req/s >= 1.2x PostGraphile" if mode == "saturated" else "p99 <= 10 ms"
    p99s = " ".join(f"{r['p99_us'] / 1000:.1f}" for r in g.runs[mode])
    print(f"{g.name} p99 by round: {p99s} ms  (target: {target})")


def sqlite_section(args: argparse.Namespace, data: read_seed.DataSet) -> None:
    shutil.rmtree(RUN / "sqlite", ignore_errors=True)
    url = f"sqlite+aiosqlite:///{(RUN / 'sqlite' / 'genhub.db').as_posix()}"
    read_seed.genhub_migrate(genhub_env(None, 0), ROOT)
    asyncio.run(read_seed.seed_genhub(url, data))
    with ExitStack() as stack:
        server = start_genhub(stack, "genhub-sqlite", None, write_bodies()[0])
        expected = asyncio.run(read_verify.expected_genhub(url, read_seed.BENCH_USER_ID, FIRST))
        check_answers([server], {server.name: expected})
        measure([server], args)
    print(
        f"\n(c) genhub's embedded default (make run: SQLite, no Redis), the same page and rows; medians of {args.rounds}"
    )
    print(HEADER.replace("server", "load  "))
    for mode in ("saturated", "capped"):
        print(fmt(mode, server.runs[mode]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of uncounted load before each run")
    parser.add_argument("--prime", type=float, default=10.0, help="seconds of load per server before round 1")
    parser.add_argument("--connections", type=int, default=16, help="connections of the saturated runs")
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s offered in the capped runs")
    parser.add_argument("--rate-connections", type=int, default=64, help="connections of the capped runs")
    parser.add_argument("--servers", nargs="+", choices=("postgraphile", "floor", *GENHUBS), default=None)
    parser.add_argument("--sqlite", choices=("also", "only", "skip"), default="also", help="the SQLite section")
    args = parser.parse_args()
    names = args.servers or ["postgraphile", "floor", "genhub"]
    if shutil.which("wrk") is None or (shutil.which("npm") is None and "postgraphile" in names):
        print("needs wrk and npm: apt-get install -y wrk nodejs npm")
        return 2
    RUN.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(
        f"read benchmark: the history page ({FIRST} generations, model, 2 outputs each), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        f" commit {commit.strip()}, {os.cpu_count()} cores, machine busy before start: {machine_busy(3):.0f}%"
    )
    data = read_seed.build()
    if args.sqlite != "only":
        plain, genhub_url = asyncio.run(prepare_postgres(data))
        with ExitStack() as stack:
            servers = start_servers(stack, names, plain, genhub_url)
            want_plain = asyncio.run(read_verify.expected_plain(plain, read_seed.BENCH_USER_ID, FIRST))
            want_genhub = asyncio.run(read_verify.expected_genhub(genhub_url, read_seed.BENCH_USER_ID, FIRST))
            expected = {"postgraphile": want_plain, "floor": want_plain} | dict.fromkeys(GENHUBS, want_genhub)
            check_answers(servers, expected)
            measure(servers, args)
        report(servers, args)
    if args.sqlite != "skip":
        sqlite_section(args, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
