"""Benchmark one request authenticated by an API key against the same request with an access token (JWT).

One `genhub serve` on PostgreSQL + Redis, one account, the same query (`me { id email }`)
sent with `Authorization: Bearer <jwt>` or `Authorization: Bearer ghk_...`, the two taking
turns for `--rounds` rounds (this machine's speed drifts over a minute). Two measurements of
each: saturated (`--clients` connections, no think time) and paced (the same clients with
exponential think time offering about `--rate` requests/s). The report gives each one's
median run (by throughput): requests/s, p50/p99 latency and the server's CPU time per
request, and the median of the per-round ratios key/JWT. Load comes from `wrk`
(bench/wrk_read.lua).

Before that, in this process, the verification alone (what differs between the two
requests): CPU per verification of each credential, warm (the process remembers it: the
JWT's signature was checked before, the key was read before) and cold (a JWT never seen,
a key the process forgot: one database read), measured with `time.process_time`.

    .venv/bin/python bench/auth.py [--clients 32] [--duration 5] [--rounds 5] [--rate 300] [--warmup 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk_rounds  # noqa: E402
from bench.databases import drop_database, migrated_database  # noqa: E402
from bench.processes import free_port  # noqa: E402

DB_NAME = "genhub_bench_auth"
SECRET = "bench-secret-" + "y" * 40
QUERY = json.dumps({"query": "query Me { me { id email } }"})
AUTHS = ("jwt", "api-key")


async def seed(url: str) -> dict[str, str]:
    """One account; its access token (3 h) and an API key with the `read` scope."""
    from domain.api_keys import Scope, mint
    from domain.users import Role
    from infrastructure.security.tokens import TokenService
    from infrastructure.settings import Settings

    settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET)  # type: ignore[call-arg]
    tokens = TokenService.from_settings(settings)
    tokens.access_ttl = 3 * 3600
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    new = mint(user_id=user_id, name="bench", scopes=frozenset({Scope.READ}), created_at=now, expires_at=None)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, 'bench@example.com', 'x',"
            " 'user', now())",
            user_id,
        )
        await conn.execute(
            "INSERT INTO api_keys (id, user_id, name, lookup_id, secret_hash, scopes, created_at)"
            " VALUES ($1, $2, 'bench', $3, $4, 'read', now())",
            new.key.id,
            user_id,
            new.key.lookup_id,
            new.secret_hash,
        )
    finally:
        await conn.close()
    return {"jwt": tokens.issue_access(user_id, Role.USER).token, "api-key": new.token}


def server(url: str, port: int) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    env = wrk_rounds.server_env(database_url=url, jwt_secret=SECRET, RATE_LIMIT_API_KEY_LOOKUPS="100000000")
    return wrk_rounds.running(
        "genhub", [wrk_rounds.GENHUB, "serve", "--port", str(port)], env, f"http://127.0.0.1:{port}/health"
    )


def check_answers(port: int, secrets: dict[str, str]) -> None:
    """Both credentials answer the same account, without errors (else the run would measure refusals)."""
    answers = []
    for auth in AUTHS:
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            content=QUERY,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {secrets[auth]}"},
        )
        body = response.json()
        assert "errors" not in body, (auth, body)
        answers.append(body["data"]["me"]["id"])
    assert answers[0] == answers[1], answers


def report(runs: wrk_rounds.Runs, args: argparse.Namespace) -> None:
    for mode in (m for m in wrk_rounds.MODES if m in args.modes):
        print(f"\n{mode}:")
        print(f"{'auth':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'errors':>7}")
        for auth in AUTHS:
            rounds = runs[auth][mode]
            median = sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]
            p50 = statistics.median(r["p50_us"] for r in rounds) / 1000
            p99 = statistics.median(r["p99_us"] for r in rounds) / 1000
            cpu = statistics.median(1000 * r["server_cpu_s"] / max(1, r["requests"]) for r in rounds)
            errors = sum(int(r["errors"]) for r in rounds)
            print(f"{auth:<10} {median['rps']:>8.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>11.3f} {errors:>7}")
        ratios = [k["rps"] / j["rps"] for j, k in zip(runs["jwt"][mode], runs["api-key"][mode], strict=True)]
        cpu_ratios = [
            (k["server_cpu_s"] / k["requests"]) / (j["server_cpu_s"] / j["requests"])
            for j, k in zip(runs["jwt"][mode], runs["api-key"][mode], strict=True)
        ]
        print(
            f"api-key/jwt: throughput x{statistics.median(ratios):.3f}, "
            f"CPU per request x{statistics.median(cpu_ratios):.3f} (medians of {len(ratios)} rounds)"
        )


async def verification_costs(url: str, secrets: dict[str, str], n: int) -> None:
    """CPU µs per verification of each credential, warm and cold, in this process (the server's code)."""
    from domain.users import Role
    from infrastructure.bootstrap import open_services
    from infrastructure.settings import Settings

    settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET, redis_url=wrk_rounds.REDIS_URL)  # type: ignore[call-arg]
    async with open_services(settings) as services:
        accounts, keys, gate = services.accounts, services.api_keys, services.adapters.api_key_gate
        tokens = services.adapters.tokens
        principal, _ = accounts.verify_access(secrets["jwt"])
        # distinct tokens (another claim each): none of them is remembered yet
        fresh = [tokens.issue_access(principal.user_id, Role.USER, session_version=i).token for i in range(n)]
        key_principal, _ = await keys.verify(secrets["api-key"])
        rows = []

        def per_call(started: float, calls: int) -> float:
            return (time.process_time() - started) / calls * 1e6

        t = time.process_time()
        for _ in range(n):
            accounts.verify_access(secrets["jwt"])
        rows.append(("jwt", "warm", per_call(t, n)))
        t = time.process_time()
        for token in fresh:
            accounts.verify_access(token)
        rows.append(("jwt", "cold", per_call(t, n)))
        t = time.process_time()
        for _ in range(n):
            await keys.verify(secrets["api-key"])
        rows.append(("api-key", "warm", per_call(t, n)))
        cold = max(1, n // 10)
        t = time.process_time()
        for _ in range(cold):
            assert key_principal.api_key_id is not None
            gate.forget(key_principal.api_key_id)
            await keys.verify(secrets["api-key"])
        rows.append(("api-key", "cold (1 read)", per_call(t, cold)))
        await services.adapters.api_key_usage.flush()
    print("\nverification alone (in process, CPU µs per call):")
    for auth, state, micros in rows:
        print(f"{auth:<10} {state:<14} {micros:>9.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wrk_rounds.round_options(parser, variant="credential", clients=32, rounds=5, rate=300.0, warmup=2)
    parser.add_argument("--verifications", type=int, default=20000, help="calls per in-process measurement")
    args = parser.parse_args()
    if not wrk_rounds.wrk_installed():
        return 2
    url = asyncio.run(migrated_database(DB_NAME))
    secrets = asyncio.run(seed(url))
    asyncio.run(verification_costs(url, secrets, args.verifications))
    think_ms = args.clients / args.rate * 1000
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(QUERY)
    print(
        f"\nauth benchmark: `me` with a JWT vs an API key, {args.clients} clients, {args.rounds} rounds of "
        f"{args.duration}s per credential and mode, one API process, {os.cpu_count()} cores, PostgreSQL + Redis local"
    )
    port = free_port()

    def run(auth: str, seconds: int, think: float) -> dict[str, float]:
        env = {"READ_BODY_FILE": f.name, "READ_AUTH": f"Bearer {secrets[auth]}", "READ_THINK_MS": str(think)}
        url = f"http://127.0.0.1:{port}/graphql"
        return wrk_rounds.run_wrk(url, "wrk_read.lua", clients=args.clients, duration=seconds, env=env)

    try:
        with server(url, port) as proc:
            check_answers(port, secrets)
            runs = wrk_rounds.take_turns(
                dict.fromkeys(AUTHS, proc),
                run,
                warmup=args.warmup,
                duration=args.duration,
                rounds=args.rounds,
                modes=args.modes,
                think_ms=think_ms,
            )
    finally:
        os.unlink(f.name)
        asyncio.run(drop_database(DB_NAME))
    report(runs, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
