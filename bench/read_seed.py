"""The read benchmark's data set: one deterministic set of rows, written into a plain schema
(PostGraphile's and the floor's) and into genhub's own tables (PostgreSQL or SQLite).

50 users (user 1 owns 2,000 generations: the page's viewer; users 3-50 own 375 each), 10
models, 20,000 generations with 2 assets each. Every id is an md5-derived uuid and every
instant is fixed, so every reseed is identical and all servers answer with the same rows.
The only difference between the schemas: the plain one keeps each generation's second asset
as a 'thumbnail', genhub's stores both as 'output' (its `outputs` field lists outputs only).
genhub's in-flight rows (QUEUED, PROCESSING) are what genhub itself writes: a reservation in
the ledger and the account, a deadline (long past: a live poller expires them once, releasing
the holds) and, when PROCESSING, a simulated provider task.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

BENCH_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
BENCH_EMAIL = "bench@peers.test"
BENCH_PASSWORD = "read-bench-password-1"
USERS, GENERATIONS, OWN_GENERATIONS = 50, 20_000, 2_000
_USER_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_GENERATION_EPOCH = datetime(2025, 11, 1, tzinfo=UTC)
IN_FLIGHT = ("queued", "processing")
_DEADLINE = timedelta(minutes=15)  # a model's default deadlineSeconds (domain/catalogue.py)
# (slug, name, upstream provider, kind, cost, modes, max side, active)
MODELS = [
    ("flux-schnell", "FLUX.1 [schnell]", "kie", "image", 5, ["text2img"], 1024, True),
    ("flux-dev", "FLUX.1 [dev]", "kie", "image", 12, ["text2img", "img2img"], 1536, True),
    ("flux-pro", "FLUX 1.1 [pro]", "kie", "image", 25, ["text2img", "img2img"], 2048, True),
    ("sdxl", "Stable Diffusion XL", "replicate", "image", 4, ["text2img", "inpaint"], 1024, True),
    ("ideogram-v3", "Ideogram 3.0", "kie", "image", 18, ["text2img"], 2048, True),
    ("gpt-image-1", "GPT Image 1", "kie", "image", 30, ["text2img", "edit"], 1536, True),
    ("kling-v2", "Kling 2.1", "kie", "video", 60, ["text2video", "img2video"], 1080, True),
    ("veo-3-fast", "Veo 3 Fast", "kie", "video", 80, ["text2video"], 1080, True),
    ("runway-gen4", "Runway Gen-4 Turbo", "runway", "video", 50, ["img2video"], 1280, True),
    ("legacy-sd15", "Stable Diffusion 1.5", "replicate", "image", 2, ["text2img"], 512, False),
]
_STYLES = ["a cinematic photo of", "an oil painting of", "a watercolor sketch of", "a 3d render of"]
_STYLES += ["an isometric illustration of", "a macro shot of", "a neon-lit street scene with", "a minimalist poster of"]
_SUBJECTS = ["a red fox in fresh snow", "an old lighthouse at dusk", "a bowl of ramen", "a robot reading a newspaper"]
_SUBJECTS += ["mountains above a sea of clouds", "a vintage motorcycle", "a greenhouse full of orchids"]
_SUBJECTS += ["a cat astronaut", "a rainy Tokyo alley", "a desert caravan at night", "a koi pond"]
_LIGHTS = ["golden hour", "soft studio light", "volumetric fog", "high detail, 8k", "shallow depth of field"]
_LIGHTS += ["pastel palette", "dramatic shadows"]

PLAIN_SCHEMA = """
CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL UNIQUE, password_hash text NOT NULL,
  role text NOT NULL DEFAULT 'user', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE models (id uuid PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL, provider text NOT NULL,
  kind text NOT NULL, cost_credits int NOT NULL, capabilities jsonb NOT NULL DEFAULT '{}', is_active bool NOT NULL);
CREATE TABLE generations (id uuid PRIMARY KEY, user_id uuid NOT NULL REFERENCES users(id),
  model_id uuid NOT NULL REFERENCES models(id), prompt text NOT NULL, params jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL, progress real NOT NULL DEFAULT 0, reserved_credits int NOT NULL DEFAULT 0,
  charged_credits int NOT NULL DEFAULT 0, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  finished_at timestamptz);
CREATE INDEX generations_user_created_idx ON generations (user_id, created_at DESC, id);
CREATE TABLE assets (id uuid PRIMARY KEY, generation_id uuid NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
  kind text NOT NULL, object_key text NOT NULL, content_type text NOT NULL, size bigint NOT NULL);
CREATE INDEX assets_generation_idx ON assets (generation_id);
CREATE TABLE credit_accounts (user_id uuid PRIMARY KEY REFERENCES users(id), balance bigint NOT NULL,
  reserved bigint NOT NULL DEFAULT 0);
"""


def uid(key: str) -> uuid.UUID:
    """An RFC 4122 v4-shaped uuid derived from a text key."""
    h = hashlib.md5(key.encode()).hexdigest()
    return uuid.UUID(h[:12] + "4" + h[13:16] + "8" + h[17:])


def user_id(i: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{i:012d}") if i <= 2 else uid(f"peers-user-{i}")


@dataclass(frozen=True)
class DataSet:
    """Rows in the plain schema's columns; genhub's tables take a few more (see genhub_rows)."""

    users: list[dict[str, Any]]
    models: list[dict[str, Any]]
    generations: list[dict[str, Any]]
    assets: list[dict[str, Any]]


def build() -> DataSet:
    users = [
        {
            "id": user_id(i),
            "email": BENCH_EMAIL if i == 1 else "loadgen@peers.test" if i == 2 else f"user{i}@peers.test",
            "password_hash": "",
            "role": "admin" if i > 2 and i % 25 == 0 else "user",
            "created_at": _USER_EPOCH + timedelta(days=i),
        }
        for i in range(1, USERS + 1)
    ]
    models = [
        {
            "id": uid(f"peers-model-{n}"),
            "slug": slug,
            "name": name,
            "provider": provider,
            "kind": kind,
            "cost_credits": cost,
            "capabilities": {"modes": modes, "maxWidth": side, "maxHeight": side}
            | {"maxDurationS": 10 if kind == "video" else None},
            "is_active": active,
        }
        for n, (slug, name, provider, kind, cost, modes, side, active) in enumerate(MODELS, start=1)
    ]
    generations, assets = [], []
    for g in range(1, GENERATIONS + 1):
        status = {0: "failed", 1: "processing", 2: "queued"}.get(g % 20, "succeeded")
        cost = MODELS[g % 9][4]
        created = _GENERATION_EPOCH - timedelta(minutes=7 * g, seconds=g * 37 % 60, microseconds=g * 7919 % 1_000_000)
        gid = uid(f"peers-gen-{g}")
        prompt = f"{_STYLES[g % 8]} {_SUBJECTS[g % 11]}, {_LIGHTS[g % 7]}, variation {g}"
        generations.append(
            {
                "id": gid,
                "user_id": BENCH_USER_ID if g <= OWN_GENERATIONS else user_id(3 + g % 48),
                "model_id": models[g % 9]["id"],
                "prompt": prompt,
                "params": {"width": 1024, "height": 1536 if g % 3 == 0 else 1024, "steps": 20 + g % 30}
                | {"guidance": 3.5, "seed": g},
                "status": status,
                "progress": {"succeeded": 1.0, "processing": 0.4}.get(status, 0.0),
                "reserved_credits": cost,
                "charged_credits": cost if status == "succeeded" else 0,
                "created_at": created,
                "updated_at": created + timedelta(seconds=20),
                "finished_at": created + timedelta(seconds=10 + g % 50) if status in ("succeeded", "failed") else None,
            }
        )
        for k, (kind, suffix, content_type, size) in enumerate(
            (
                ("output", "output.png", "image/png", 800_000 + g * 7919 % 2_200_000),
                ("thumbnail", "thumb.webp", "image/webp", 20_000 + g * 104_729 % 40_000),
            )
        ):
            assets.append(
                {
                    "id": uid(f"peers-asset-{g}-{k + 1}"),
                    "generation_id": gid,
                    "kind": kind,
                    "object_key": f"generations/{gid}/{suffix}",
                    "content_type": content_type,
                    "size": size,
                }
            )
    return DataSet(users, models, generations, assets)


async def recreate_database(admin_dsn: str, name: str) -> str:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


async def seed_plain(dsn: str, data: DataSet) -> None:
    """The plain schema (the tables PostGraphile exposes), by COPY."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PLAIN_SCHEMA)
        jsonb = ("capabilities", "params")
        for table, rows in (
            ("users", data.users),
            ("models", data.models),
            ("generations", data.generations),
            ("assets", data.assets),
        ):
            columns = list(rows[0])
            records = [tuple(json.dumps(r[c]) if c in jsonb else r[c] for c in columns) for r in rows]
            await conn.copy_records_to_table(table, records=records, columns=columns)
        await conn.execute("INSERT INTO credit_accounts (user_id, balance) SELECT id, 1000000 FROM users")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def genhub_migrate(env: dict[str, str], root: Path) -> None:
    """genhub's schema, by its own command (DATABASE_URL or DATA_DIR in env says where)."""
    genhub = root / ".venv" / "bin" / "genhub"
    subprocess.run([str(genhub), "migrate"], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


async def seed_genhub(url: str, data: DataSet) -> None:
    """The same rows in genhub's tables (SQLAlchemy URL: PostgreSQL or SQLite), after `genhub migrate`.

    Every user gets the same real password hash (genhub's own hasher), so the benchmark logs
    in with genhub's `login` mutation."""
    from sqlalchemy import insert
    from sqlalchemy.ext.asyncio import create_async_engine

    from infrastructure.db.models import (
        AssetRow,
        CreditAccountRow,
        CreditLedgerRow,
        GenerationRow,
        ModelRow,
        ProviderTaskRow,
        UserRow,
    )
    from infrastructure.security.passwords import Argon2PasswordHasher

    password_hash = await Argon2PasswordHasher().hash(BENCH_PASSWORD)
    models = [
        m
        | {"provider": "simulated", "created_at": _USER_EPOCH, "updated_at": _USER_EPOCH}
        | {"capabilities": m["capabilities"] | {"upstreamProvider": m["provider"]}}
        for m in data.models
    ]
    generations = [
        g
        | {
            "error_code": "PROVIDER_FAILED" if g["status"] == "failed" else None,
            "error_message": "the provider reported a failure" if g["status"] == "failed" else None,
            "submit_attempts": 0 if g["status"] == "queued" else 1,
            "provider_task_id": _task_id(g) if g["status"] != "queued" else None,
            "deadline_at": g["created_at"] + _DEADLINE if g["status"] in IN_FLIGHT else None,
        }
        for g in data.generations
    ]
    in_flight = [g for g in data.generations if g["status"] in IN_FLIGHT]
    held: dict[uuid.UUID, int] = {}
    for g in in_flight:
        held[g["user_id"]] = held.get(g["user_id"], 0) + g["reserved_credits"]
    created = {
        g["id"]: _GENERATION_EPOCH - timedelta(minutes=7 * n, seconds=-20) for n, g in enumerate(data.generations, 1)
    }
    assets = [
        a | {"kind": "output", "position": int(a["kind"] != "output"), "created_at": created[a["generation_id"]]}
        for a in data.assets
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(UserRow), [u | {"password_hash": password_hash} for u in data.users])
            await conn.execute(insert(ModelRow), models)
            await conn.execute(insert(GenerationRow), generations)
            await conn.execute(insert(AssetRow), assets)
            await conn.execute(
                insert(CreditAccountRow),
                [
                    {"user_id": u["id"], "balance": 1_000_000, "reserved": held.get(u["id"], 0), "version": 0}
                    for u in data.users
                ],
            )
            # What `generate` writes for each generation still in flight: its reservation
            # (domain/use_cases/generation_credits.py reservation_for), which the expiry releases.
            await conn.execute(
                insert(CreditLedgerRow),
                [
                    {"id": uid(f"read-reserve-{g['id']}"), "user_id": g["user_id"], "kind": "reserve"}
                    | {"amount": g["reserved_credits"], "generation_id": g["id"], "created_at": g["created_at"]}
                    | {"idempotency_key": f"gen:{g['id']}:reserve"}
                    for g in in_flight
                ],
            )
            # What a submit records beside a PROCESSING generation's provider task id.
            await conn.execute(
                insert(ProviderTaskRow),
                [
                    {"id": uid(f"read-task-{g['id']}"), "generation_id": g["id"], "provider": "simulated"}
                    | {"external_id": _task_id(g), "state": "submitted", "raw": {}, "attempts": 1}
                    | {"last_polled_at": g["created_at"], "created_at": g["created_at"]}
                    for g in data.generations
                    if g["status"] == "processing"
                ],
            )
            await conn.execute(
                insert(CreditLedgerRow),
                [
                    {"id": uid(f"read-grant-{u['id']}"), "user_id": u["id"], "kind": "grant", "amount": 1_000_000}
                    | {
                        "idempotency_key": f"read-grant-{u['id']}",
                        "reason": "bench seed",
                        "created_at": u["created_at"],
                    }
                    for u in data.users
                ],
            )
    finally:
        await engine.dispose()


def _task_id(generation: dict[str, Any]) -> str:
    """A simulated provider task id (infrastructure/providers/simulated.py). A PROCESSING one's
    task never finishes (`hang`): it stays in flight until its deadline settles it."""
    start_ms = int(generation["created_at"].timestamp() * 1000)
    mode = {"processing": "hang", "failed": "fail"}.get(generation["status"], "normal")
    seed = hashlib.sha256(generation["prompt"].encode()).hexdigest()[:12]
    return f"sim-{generation['id'].hex}-{start_ms}-4-500-{mode}-{seed}"


async def analyze(url: str) -> None:
    """Fresh statistics for the planner (PostgreSQL), as after any bulk load."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
