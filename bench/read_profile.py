"""Where a history page's time goes: a py-spy profile of `genhub serve` under load (issue #17).

    .venv/bin/python bench/read_profile.py [--path compiled|resolvers] [--duration 15]
        [--connections 16] [--hz 200] [--prime 5] [--top 15]

The same page, rows and server settings as bench/read.py (its seed, its genhub start-up and
its answer check), on a database of its own (`genhub_read_profile`):
1. seeds and migrates the database, starts one `genhub serve` (production settings;
   `--path resolvers` turns compiled reads off so the resolver path is the one profiled),
   logs in and checks the answer against the database before any load;
2. primes the server with wrk for --prime s, then samples the busiest process of its group
   with py-spy (a dev dependency: `py-spy record --format raw`, idle frames left out, so
   the samples are CPU) for --duration s while wrk's --connections connections load it;
   the shares count the event loop's thread (the one serving requests): py-spy takes a
   thread pool's worker waiting for work for a busy thread, so other threads are only counted;
3. prints the share of samples by where the innermost Python frame is (self time: the
   package, our own layer, asyncio or another standard module), by part of the request
   (the innermost frame that belongs to one: HTTP stack, our endpoint, GraphQL execution,
   compiled reads, ORM, driver, JSON, logging, JWT; a standard module counts for its
   caller), the share of samples whose stack passes through each part (inclusive), and
   the --top functions by self samples. Throughput under the profiler is printed for context only: py-spy slows
   the process it samples, so compare shares, not the req/s.

py-spy needs to ptrace the server (root, or CAP_SYS_PTRACE / kernel.yama.ptrace_scope 0).
Needs wrk, PostgreSQL (BENCH_POSTGRES_DSN) and Redis (BENCH_READ_REDIS_URL) up.
Run files go to bench/.run/read/ (the raw profile: profile-<path>.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import sysconfig
import threading
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import read, read_seed, read_verify  # noqa: E402
from bench.read_servers import Server, group_ticks, post, run_wrk  # noqa: E402

DB = "genhub_read_profile"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
LOOP_FILES = ("asyncio/runners.py", "asyncio/base_events.py", "asyncio/events.py")
OUR_LAYERS = ("graph", "infrastructure", "domain", "workers", "entrypoints")

#: Parts of a request, by the files their frames come from (a sample counts for each part
#: its stack passes through, so the shares overlap and need not sum to 100%).
PARTS: dict[str, tuple[str, ...]] = {
    "HTTP stack (uvicorn, httptools, Starlette, FastAPI)": ("/uvicorn/", "/httptools/", "/starlette/", "/fastapi/"),
    "our HTTP endpoint and middlewares (graph/http*, graph/middleware*)": ("/graph/http", "/graph/middleware"),
    "GraphQL execution (graphql-core)": ("/graphql/execution/",),
    "GraphQL parse and validate (graphql-core)": ("/graphql/language/", "/graphql/validation/"),
    "Strawberry": ("/strawberry/",),
    "compiled reads (graph/compiled_reads, json_reads)": ("/graph/compiled_reads", "/db/json_reads/"),
    "SQLAlchemy": ("/sqlalchemy/",),
    "asyncpg": ("/asyncpg/",),
    "JSON (json, orjson)": ("/json/", "/orjson/"),
    "logging": ("/logging/", "/structlog/"),
    "JWT (PyJWT, cryptography)": ("/jwt/", "/cryptography/"),
    "Redis client": ("/redis/",),
}


def parse_raw(lines: Iterable[str]) -> list[tuple[list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) lines -> (frames outermost first as (function, file), count)."""
    stacks = []
    for line in lines:
        head, _, count = line.rstrip("\n").rpartition(" ")
        if not head or not count.isdigit():
            continue
        frames = []
        for part in head.split(";"):
            m = FRAME.match(part)
            if m:  # process and thread labels carry no file
                frames.append((m["func"], m["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def place(file: str) -> str:
    """Where a frame's file belongs: a package, one of our layers, asyncio or a standard module."""
    path = Path(file)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    try:
        ours = path.resolve().relative_to(ROOT)
    except ValueError:
        ours = None
    if ours is not None and ours.parts and ours.parts[0] in OUR_LAYERS:
        return f"genhub {ours.parts[0]}/"
    try:
        std = path.resolve().relative_to(STDLIB)
    except ValueError:
        return file if not file.startswith("<") else "interpreter (frozen or builtin)"
    top = std.parts[0].removesuffix(".py")
    return "asyncio" if top == "asyncio" else f"stdlib {top}"


def attribute(frames: list[tuple[str, str]]) -> str:
    """The part of the innermost frame that belongs to one (asyncio's own frames belong to none)."""
    for _, file in reversed(frames):
        if file.endswith(LOOP_FILES):  # left the callback the loop runs: the rest is the loop's
            break
        for part, needles in PARTS.items():
            if any(needle in file for needle in needles):
                return part
        if place(file).startswith("genhub "):
            return f"other genhub code ({place(file)})"
    return "the event loop (asyncio, sockets, timers)"


def on_the_loop(frames: list[tuple[str, str]]) -> bool:
    """A stack of the event loop's thread (the one that serves requests)."""
    return any(file.endswith(LOOP_FILES) or "/uvloop/" in file for _, file in frames)


def shares(all_stacks: list[tuple[list[tuple[str, str]], int]], top: int) -> None:
    stacks = [(frames, n) for frames, n in all_stacks if on_the_loop(frames)]
    total, everything = sum(n for _, n in stacks), sum(n for _, n in all_stacks)
    if total == 0:
        raise SystemExit("py-spy took no samples (is the server busy? may py-spy ptrace it?)")
    print(
        f"\n{everything} samples: {total} on the event loop's thread, the shares below;"
        f" {everything - total} in other threads (thread pools, which py-spy samples while they wait)"
    )
    by_place: Counter[str] = Counter()
    by_func: Counter[str] = Counter()
    by_part: Counter[str] = Counter()
    attributed: Counter[str] = Counter()
    for frames, n in stacks:
        attributed[attribute(frames)] += n
        func, file = frames[-1]
        by_place[place(file)] += n
        by_func[f"{func} ({place(file)})"] += n
        files = {f for _, f in frames}
        for part, needles in PARTS.items():
            if any(needle in f for f in files for needle in needles):
                by_part[part] += n
    print("\nself (innermost Python frame), by place:")
    for name, n in by_place.most_common():
        if n / total >= 0.005:
            print(f"  {n / total * 100:6.1f}%  {name}")
    print("\nby part (the innermost frame that belongs to a part; standard modules count for their caller):")
    for part, n in attributed.most_common():
        print(f"  {n / total * 100:6.1f}%  {part}")
    print("\ninclusive (samples whose stack passes through it; parts overlap; all of them are under the HTTP stack):")
    for part in PARTS:
        if not part.startswith("HTTP stack"):
            print(f"  {by_part[part] / total * 100:6.1f}%  {part}")
    print(f"\ntop {top} functions by self samples:")
    for name, n in by_func.most_common(top):
        print(f"  {n / total * 100:6.1f}%  {name}")


async def prepare() -> str:
    url = (await read_seed.recreate_database(read.PG_ADMIN, DB)).replace("postgresql://", "postgresql+asyncpg://")
    read_seed.genhub_migrate({**os.environ, "DATABASE_URL": url}, ROOT)
    await read_seed.seed_genhub(url, read_seed.build())
    await read_seed.analyze(url)
    from redis.asyncio import Redis

    redis = Redis.from_url(read.REDIS_URL)
    await redis.flushdb()  # login and rate-limit counters of earlier runs
    await redis.aclose()
    return url


def busiest(pgid: int, server: Server, seconds: float, connections: int) -> int:
    """The process of the group that burns the CPU under load (the serving one)."""
    before = group_ticks(pgid)
    run_wrk(server, connections, seconds)
    after = group_ticks(pgid)
    return max(after, key=lambda pid: after[pid] - before.get(pid, 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=("compiled", "resolvers"), default="compiled")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds sampled under load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--hz", type=int, default=200, help="py-spy's sampling rate")
    parser.add_argument("--prime", type=float, default=5.0, help="seconds of load before sampling")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: `make .venv/.installed-dev` installs the dev extras")
    read.RUN.mkdir(parents=True, exist_ok=True)
    print(f"seeding {DB} (bench/read_seed.py's rows) ...", flush=True)
    url = asyncio.run(prepare())
    os.environ["COMPILED_READS"] = "true" if args.path == "compiled" else "false"
    body = read.RUN / "body_genhub.json"
    body.write_text(json.dumps({"query": read.GENHUB_QUERY, "variables": {"first": read.FIRST}}))
    want = asyncio.run(read_verify.expected_genhub(url, read_seed.BENCH_USER_ID, read.FIRST))
    out = read.RUN / f"profile-{args.path}.txt"
    with ExitStack() as stack:
        server = read.start_genhub(stack, f"genhub-{args.path}", url, body)
        print(
            "  verified "
            + read_verify.verify(server.name, post(server.url, body.read_bytes(), server.auth), want, read.FIRST)
        )
        pid = busiest(server.pgid, server, args.prime, args.connections)
        cmd = [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(args.hz),
            "--duration",
            str(round(args.duration)),
        ]
        cmd += ["--format", "raw", "--full-filenames", "--output", str(out)]
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        load: dict[str, float] = {}
        loader = threading.Thread(target=lambda: load.update(run_wrk(server, args.connections, args.duration)))
        loader.start()
        loader.join()
        _, err = spy.communicate(timeout=args.duration + 30)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace').strip()}")
    print(
        f"\n{args.path} path, {args.connections} connections, {args.duration:.0f} s at {args.hz} Hz: "
        f"{load['rps']:.0f} req/s and {load['cpu_ms_per_req']:.3f} ms CPU per request under the profiler "
        "(context only)"
    )
    shares(parse_raw(out.read_text().splitlines()), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
