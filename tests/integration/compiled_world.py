"""The world of the compiled-read tests (test_compiled_reads*.py): personas, varied rows, both paths.

`compiled_world` starts the app on PostgreSQL with the board world of board_world.py, seeds
rows in every shape the compiled fields can take, and counts the statements the compiled
path runs; `both_paths` answers a request with compiled reads and then on the resolvers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from hypothesis import HealthCheck, settings

from domain import media
from domain.media import extension_for
from tests.integration.board_world import World, module_world, with_board

PERSONAS = ("owner", "editor", "viewer", "other", "admin", "anonymous")
STATUSES = ("queued", "submitting", "processing", "succeeded", "failed", "canceled", "expired")
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class CountingReads:
    """The app's JsonReads, counting the statements it ran."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.runs = 0

    async def fetch(self, sql: str, params: Sequence[Any]) -> str:
        self.runs += 1
        text: str = await self.inner.fetch(sql, params)
        return text


@dataclasses.dataclass
class Rows:
    generation_ids: dict[str, list[str]]  # persona -> ids of generations they own
    chunk_ids: dict[str, list[str]]
    cursors: list[str]  # cursors issued by the app for the owner's history
    counting: CountingReads
    dsn: str = ""  # the database, for tests that change a row
    examples: int = 0  # generated reads sent so far
    compiled: int = 0  # of which the compiled path answered
    extra: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # seed_catalogue_and_boards' ids


#: An output's media and thumbnail, in every state the Asset fields show: (content type, width, height,
#: duration, thumbnail state, thumbnails made). A legacy output (stored before outputs were verified)
#: has no geometry, its thumbnail made since by the sweep; one written by a process older than
#: migration 0007 has no state either; two thumbnails of one output show which one both paths pick.
OUTPUT_SHAPES: tuple[tuple[str, int | None, int | None, float | None, str | None, int], ...] = (
    ("image/png", None, None, None, "ready", 1),
    ("image/png", None, None, None, None, 0),
    ("image/jpeg", 1024, 768, None, "pending", 0),
    ("image/webp", 512, 512, None, "ready", 1),
    ("video/mp4", 1280, 720, 0.1 + 0.2, "failed", 0),
    ("video/webm", 720, 1280, 4.0, "ready", 2),
)


async def seed_output(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    generation_id: uuid.UUID,
    position: int,
    shape: tuple[str, int | None, int | None, float | None, str | None, int],
    at: datetime,
) -> None:
    """One output of a generation as the pipeline stores it, with its thumbnails (keys as domain/media.py makes them)."""
    content_type, width, height, duration, state, thumbnails = shape
    output_id = uuid.uuid4()
    key = f"outputs/{user_id}/{generation_id}/{position}{extension_for(content_type)}"
    await conn.execute(
        "INSERT INTO assets (id, generation_id, kind, position, object_key, content_type, size, created_at, width, "
        "height, duration_seconds, thumbnail_state, thumbnail_attempts, thumbnail_error) "
        "VALUES ($1, $2, 'output', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        output_id, generation_id, position, key, content_type, 1000 + position, at, width, height, duration, state,
        3 if state == "failed" else int(state == "ready"), "THUMBNAIL_UNDECODABLE" if state == "failed" else None,
    )  # fmt: skip
    side, short = media.THUMBNAIL_MAX_SIDE, media.THUMBNAIL_MAX_SIDE * 9 // 16
    geometry = (side, short) if (width or 0) >= (height or 0) else (short, side)
    for n in range(thumbnails):
        # A second thumbnail sorts before the first (its position is lower): the one both paths show.
        other = f"thumbnails/{user_id}/{generation_id}/{position}-b.webp"
        await conn.execute(
            "INSERT INTO assets (id, generation_id, kind, position, object_key, content_type, size, created_at, "
            "width, height, source_id) VALUES ($1, $2, 'thumbnail', $3, $4, $5, $6, $7, $8, $9, $10)",
            uuid.uuid4(), generation_id, position - n, other if n else media.thumbnail_key(key), media.THUMBNAIL_TYPE,
            300 + n, at, *geometry, output_id,
        )  # fmt: skip


async def seed_variety(dsn: str, world: World) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Generations, outputs, inputs and chunks in every shape the fields can take (deterministic)."""
    rng = random.Random(17)
    base = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    generations: dict[str, list[str]] = {p: [] for p in PERSONAS}
    chunks: dict[str, list[str]] = {p: [] for p in PERSONAS}
    conn = await asyncpg.connect(dsn)
    try:
        preset_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO presets (id, model_id, name, params, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            preset_id, uuid.UUID(world.model_id), "Base ✓", json.dumps({"steps": 4, "style": "ink"}), base,
        )  # fmt: skip
        for persona in ("owner", "editor", "other"):
            user_id = uuid.UUID(world.user_ids[persona])
            for i in range(4):
                chunk_id = uuid.uuid4()
                at = base + timedelta(minutes=i, microseconds=0 if i % 2 else 123456)
                await conn.execute(
                    "INSERT INTO chunks (id, user_id, object_key, filename, content_type, size, sha256, status, "
                    "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    chunk_id, user_id, f"user_chunks/{user_id}/{chunk_id}", f"in-{i}.png", "image/png", 10 * i,
                    None if i == 3 else "ab" * 32, "pending" if i == 3 else "ready", at,
                )  # fmt: skip
                chunks[persona].append(str(chunk_id))
            for i in range(14):
                gid = uuid.uuid4()
                status = STATUSES[(i + len(persona)) % len(STATUSES)]
                # Pairs share a created_at: the page order falls back to the id.
                created = base + timedelta(hours=i // 2, microseconds=0 if i % 3 == 0 else 1000 * i + 7)
                final = status in ("succeeded", "failed", "canceled", "expired")
                error = {"failed": ("PROVIDER_ERROR", rng.choice([None, "", "model refused: ünïcode ✗"]))}.get(status)
                params = {"seed": i, "_internal": "hidden", "nested": {"a": [1, 2.5, None]}, "ratio": "16:9"}
                board = (
                    uuid.UUID(world.board_id) if persona == "editor" or (persona == "owner" and i % 4 == 0) else None
                )
                await conn.execute(
                    "INSERT INTO generations (id, user_id, board_id, model_id, preset_id, prompt, params, status, "
                    "progress, error_code, error_message, reserved_credits, charged_credits, created_at, updated_at, "
                    "finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    gid, user_id, board, uuid.UUID(world.model_id), preset_id if i % 3 == 1 else None,
                    f"prompt {i} «{persona}» \"quoted\" \\ back", json.dumps(params), status,
                    [0.0, 0.5, 1.0, 0.1][i % 4], error[0] if error else None, error[1] if error else None,
                    0 if final else 10, 10 if status == "succeeded" else 0, created, created + timedelta(seconds=3),
                    created + timedelta(seconds=9) if final else None,
                )  # fmt: skip
                for position in range(i % 3):
                    await seed_output(
                        conn, user_id, gid, position, OUTPUT_SHAPES[(i + position) % len(OUTPUT_SHAPES)], created
                    )
                for position, chunk_id in enumerate(chunks[persona][: i % 3]):
                    await conn.execute(
                        "INSERT INTO generation_inputs (generation_id, position, chunk_id) VALUES ($1, $2, $3)",
                        gid, position, uuid.UUID(chunk_id),
                    )  # fmt: skip
                generations[persona].append(str(gid))
    finally:
        await conn.close()
    return generations, chunks


async def seed_catalogue_and_boards(dsn: str, world: World) -> dict[str, list[str]]:
    """Models (active, inactive, both kinds, names whose order depends on collation), presets of
    several models, a second board (owner, other) and invitations (open, expired) on both boards."""
    base = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)
    ids: dict[str, list[str]] = {"models": [world.model_id], "presets": [], "boards": [world.board_id]}
    conn = await asyncpg.connect(dsn)
    try:
        capabilities = json.dumps({"params": {}, "deadlineSeconds": 300})
        for i, (slug, kind, active) in enumerate(
            [("Zeta", "video", True), ("alpha", "image", False), ("émile", "image", True), ("beta-v", "video", False)]
        ):
            model_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO models (id, slug, name, provider, kind, cost_credits, capabilities, is_active, "
                "created_at, updated_at) VALUES ($1, $2, $3, 'simulated', $4, $5, $6, $7, $8, $8)",
                model_id, slug, f"Model «{slug}»", kind, 5 + i, capabilities, active, base,
            )  # fmt: skip
            ids["models"].append(str(model_id))
        for i, name in enumerate(["b", "B", "émaux", "Z", "b"]):
            preset_id = uuid.uuid4()
            model_id = uuid.UUID(ids["models"][i % 3])
            await conn.execute(
                "INSERT INTO presets (id, model_id, name, params, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5)",
                preset_id, model_id, name, json.dumps({"steps": i}), base,
            )  # fmt: skip
            ids["presets"].append(str(preset_id))
        second = uuid.uuid4()
        owner, other = uuid.UUID(world.user_ids["owner"]), uuid.UUID(world.user_ids["other"])
        await conn.execute(
            "INSERT INTO boards (id, name, created_by, created_at) VALUES ($1, 'Second \"board\"', $2, $3)",
            second, other, base,
        )  # fmt: skip
        for user_id, role, minutes in ((other, "owner", 0), (owner, "viewer", 1)):
            await conn.execute(
                "INSERT INTO board_members (board_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
                second, user_id, role, base + timedelta(minutes=minutes),
            )  # fmt: skip
        ids["boards"].append(str(second))
        now = datetime.now(UTC)
        for board in (uuid.UUID(world.board_id), second):
            for i, (email, days) in enumerate(
                [("Zoe@Example.com", 3), ("ann@example.com", 3), ("late@example.com", -1)]
            ):
                await conn.execute(
                    "INSERT INTO board_invitations (board_id, email, email_as_typed, role, invited_by, created_at, "
                    "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    board, email.lower(), email, "editor" if i else "viewer", None,
                    now - timedelta(days=5) + timedelta(seconds=i % 2), now + timedelta(days=days),
                )  # fmt: skip
    finally:
        await conn.close()
    return ids


PAGE = "query Page($first: Int, $after: String) { generations(first: $first, after: $after) { edges { cursor } } }"


#: Every URL of an answer is signed at this time on both paths: the expiry in a signed URL is
#: the signer's clock plus the seconds, and two requests may fall in different seconds.
SIGNING_TIME = 1_900_000_000.0


@contextlib.asynccontextmanager
async def compiled_world(postgres_dsn: str, tmp: Path) -> AsyncIterator[tuple[World, Rows]]:
    """The module's world: personas, a board, varied rows, the app counting its compiled statements."""
    overrides = {"simulated_mode": "hang", "rate_limit_generate": 10_000}
    async with module_world(postgres_dsn, tmp, **overrides) as w:
        w = await with_board(w)
        generations, chunks = await seed_variety(postgres_dsn, w)
        extra = await seed_catalogue_and_boards(postgres_dsn, w)
        services = w.client.app.state.services
        await services.adapters.catalogue.invalidate()  # rows written behind the snapshot's back
        assert services.json_reads is not None, "PostgreSQL: compiled reads are on"
        signer = services.chunks.storage._signer  # the local backend's; its clock is a constructor default
        real_clock = signer._clock
        signer._clock = lambda: SIGNING_TIME
        counting = CountingReads(services.json_reads)
        w.client.app.state.services = dataclasses.replace(services, json_reads=counting)
        body = await w.data("owner", PAGE, {"first": 30})
        cursors = [e["cursor"] for e in body["generations"]["edges"]]
        rows = Rows(generations, chunks, cursors, counting, postgres_dsn, extra=extra)
        try:
            yield w, rows
        finally:
            w.client.app.state.services = services
            signer._clock = real_clock


async def both_paths(world: World, persona: str, document: str, variables: dict[str, Any]) -> tuple[Any, Any]:
    app = world.client.app
    compiled_services = app.state.services
    compiled = await world.run(persona, document, variables)
    app.state.services = dataclasses.replace(compiled_services, json_reads=None)
    try:
        resolved = await world.run(persona, document, variables)
    finally:
        app.state.services = compiled_services
    return without_request_ids(compiled), without_request_ids(resolved)


def without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    """Each request gets its own id in its errors; the rest of an answer must be equal."""
    for error in body.get("errors") or ():
        error.get("extensions", {}).pop("requestId", None)
    return body
