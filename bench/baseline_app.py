"""The baseline for bench/generate.py: a plain FastAPI route doing the same work as `generate`.

Same JWT check and the same SQL in one transaction (insert generation, conditional
reserve, ledger row), plus the queue XADD, without GraphQL. Run by bench/generate.py.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ["REDIS_URL"]
SECRET = os.environ["JWT_SECRET"]
engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=20)
redis = Redis.from_url(REDIS_URL)
app = FastAPI()

INSERT_GENERATION = text(
    "INSERT INTO generations (id, user_id, model_id, prompt, params, status, progress, reserved_credits, "
    "charged_credits, deadline_at, created_at, updated_at, submit_attempts) VALUES (:id, :user_id, :model_id, "
    ":prompt, '{}', 'queued', 0, :cost, 0, :deadline, :now, :now, 0) RETURNING id"
)
RESERVE = text(
    "UPDATE credit_accounts SET reserved = reserved + :cost, version = version + 1 "
    "WHERE user_id = :user_id AND balance - (reserved + :cost) >= 0 RETURNING balance, reserved"
)
LEDGER = text(
    "INSERT INTO credit_ledger (id, user_id, kind, amount, generation_id, idempotency_key, created_at) "
    "VALUES (:id, :user_id, 'reserve', :cost, :gen, :key, :now) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
COST = int(os.environ.get("BENCH_COST", "1"))


@app.post("/graphql")
async def generate(request: Request) -> Response:
    claims = jwt.decode(request.headers["authorization"][7:], SECRET, algorithms=["HS256"], issuer="genhub")
    body: dict[str, Any] = json.loads(await request.body())
    payload = body["variables"]["input"]
    user_id, gen_id, now = uuid.UUID(claims["sub"]), uuid.uuid4(), datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            INSERT_GENERATION,
            {
                "id": gen_id,
                "user_id": user_id,
                "model_id": uuid.UUID(payload["modelId"]),
                "prompt": payload["prompt"],
                "cost": COST,
                "deadline": now + timedelta(minutes=5),
                "now": now,
            },
        )
        if (await conn.execute(RESERVE, {"cost": COST, "user_id": user_id})).first() is None:
            raise RuntimeError("insufficient credits in the baseline")
        await conn.execute(
            LEDGER,
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "cost": COST,
                "gen": gen_id,
                "key": f"gen:{gen_id}:reserve",
                "now": now,
            },
        )
    await redis.xadd("bench:baseline", {"data": str(gen_id)}, maxlen=100_000)
    out = {
        "data": {"generate": {"__typename": "GenerateSuccess", "generation": {"id": str(gen_id), "status": "QUEUED"}}}
    }
    return Response(json.dumps(out), media_type="application/json")
