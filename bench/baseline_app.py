"""The baseline for bench/generate.py: a plain FastAPI route doing the same work as `generate`, without GraphQL.

Per request, as genhub's `generate` does on the wire:
- the JWT check (same library, same claims);
- with BENCH_BASELINE_WORK=all (the default): the rate-limit script on Redis (the same
  Lua script, the same two buckets: user and client address);
- the same SQL: one call of `genhub_start_generation()` (migration 0002) on a pooled
  asyncpg connection;
- the queue XADD (a message the size of a Taskiq one, on a stream of its own);
- with BENCH_BASELINE_WORK=all: the two events (generation, credits) PUBLISHed in one pipeline.

BENCH_BASELINE_WORK=sql leaves out the rate limit and the events: the SQL and the XADD only.
What it does not do: GraphQL parsing/validation/execution, input validation against the
model's capabilities, layering (use case, ports), metrics and logs.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from infrastructure.db.engine import keep_session
from infrastructure.db.generation_starts import START_GENERATION_SQL
from infrastructure.ratelimit import _SLIDING_WINDOW_LUA

DATABASE_URL = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
REDIS_URL = os.environ["REDIS_URL"]
SECRET = os.environ["JWT_SECRET"]
COST = int(os.environ.get("BENCH_COST", "1"))
ALL_WORK = os.environ.get("BENCH_BASELINE_WORK", "all") == "all"
WINDOW_MS = 60_000
LIMIT = 100_000_000

state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_POOL_SIZE", "12"))
    # The same pool as genhub's (no session reset query on release): the same SQL on the wire.
    state["pool"] = await asyncpg.create_pool(DATABASE_URL, min_size=min(2, size), max_size=size, reset=keep_session)
    redis = Redis.from_url(REDIS_URL)
    state["redis"] = redis
    state["limit"] = redis.register_script(_SLIDING_WINDOW_LUA)
    yield
    await state["pool"].close()
    await redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.post("/graphql")
async def generate(request: Request) -> Response:
    claims = jwt.decode(request.headers["authorization"][7:], SECRET, algorithms=["HS256"], issuer="genhub")
    body: dict[str, Any] = json.loads(await request.body())
    payload = body["variables"]["input"]
    user_id, gen_id, now = uuid.UUID(claims["sub"]), uuid.uuid4(), datetime.now(UTC)
    redis: Redis = state["redis"]
    if ALL_WORK:
        ip = request.client.host if request.client else "unknown"
        keys = [f"rl:generate:ip:{ip}", f"rl:generate:{user_id}"]
        if await state["limit"](keys=keys, args=[uuid.uuid4().hex, WINDOW_MS, LIMIT, WINDOW_MS, LIMIT]):
            raise RuntimeError("rate limited in the baseline")
    row = await state["pool"].fetchrow(
        START_GENERATION_SQL,
        gen_id,
        user_id,
        None,
        uuid.UUID(payload["modelId"]),
        None,
        payload["prompt"],
        "{}",
        COST,
        None,
        now + timedelta(minutes=5),
        now,
        uuid.uuid4(),
        f"gen:{gen_id}:reserve",
        [],
    )
    if row[0] != "started":
        raise RuntimeError(f"the baseline could not start a generation: {row[0]}")
    message = json.dumps({"task_id": uuid.uuid4().hex, "task_name": "submit_generation", "labels": {}})
    await redis.xadd("bench:baseline", {b"data": message.encode() + b" " * 200}, maxlen=100_000, approximate=True)
    if ALL_WORK:
        at = now.isoformat()
        event = {"type": "GenerationChanged", "generation_id": str(gen_id), "user_id": str(user_id), "at": at}
        credits = {"type": "CreditsChanged", "user_id": str(user_id), "balance": row[2], "reserved": row[3], "at": at}
        async with redis.pipeline(transaction=False) as pipe:
            pipe.publish(f"user:{user_id}", json.dumps(event))
            pipe.publish(f"user:{user_id}", json.dumps(credits))
            await pipe.execute()
    out = {
        "data": {"generate": {"__typename": "GenerateSuccess", "generation": {"id": str(gen_id), "status": "QUEUED"}}}
    }
    return Response(json.dumps(out), media_type="application/json")
