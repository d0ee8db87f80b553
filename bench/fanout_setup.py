"""The system bench/fanout.py measures: a temporary PostgreSQL database, seeded; Redis; one `genhub serve`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.processes import free_port

SECRET = "bench-fanout-secret-" + "x" * 40


@dataclass
class Plan:
    model: str
    users: list[str]
    generations: list[str]
    tokens: list[str]


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
def serve(db_url: str, redis_url: str, tmp: Path, extra_env: dict[str, str] | None = None) -> Any:
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
        **(extra_env or {}),
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
        deadline = time.monotonic() + 90  # under --census, tracemalloc slows the start-up
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
