"""Checks a server's answer to the history page against its database before any load:
the viewer's latest 20 generations, each with status, prompt, instant, model slug and cost,
and its assets' ids, kinds and sizes.

Answers are compared as normalized rows, so PostGraphile's shape (allGenerations.nodes,
modelByModelId, assetsByGenerationId.nodes, BigInt size as a string) and genhub's (Relay
edges, model, outputs, enum values in capitals) compare alike; a 'thumbnail' asset of the
plain schema counts as an output (genhub's seed stores both assets as outputs)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

Row = tuple[str, str, str, datetime, str, int, tuple[tuple[str, str, int], ...]]


def _node_list(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("errors"):
        raise ValueError(f"the answer has errors: {doc['errors']}")
    data = doc["data"]
    if "allGenerations" in data:
        return list(data["allGenerations"]["nodes"])
    return [edge["node"] for edge in data["generations"]["edges"]]


def _kind(kind: str) -> str:
    return "output" if kind.lower() == "thumbnail" else kind.lower()


def normalize(raw: bytes) -> list[Row]:
    rows: list[Row] = []
    for g in _node_list(json.loads(raw)):
        model = g.get("model") or g["modelByModelId"]
        assets = g["outputs"] if "outputs" in g else g["assetsByGenerationId"]["nodes"]
        created = datetime.fromisoformat(g["createdAt"].replace("Z", "+00:00"))
        outputs = tuple(sorted((str(a["id"]), _kind(a["kind"]), int(a["size"])) for a in assets))
        rows.append(
            (str(g["id"]), g["status"].lower(), g["prompt"], created, model["slug"], int(model["costCredits"]), outputs)
        )
    return rows


def _rows(records: list[Any]) -> list[Row]:
    """(id, status, prompt, created_at, slug, cost, asset id, kind, size) records, one per asset."""
    rows: dict[str, Row] = {}
    for gid, status, prompt, created, slug, cost, aid, kind, size in records:
        key = str(gid)
        row = rows.setdefault(key, (key, status, prompt, created, slug, int(cost), ()))
        rows[key] = (*row[:6], tuple(sorted((*row[6], (str(aid), _kind(kind), int(size))))))
    return list(rows.values())


async def expected_plain(dsn: str, user_id: uuid.UUID, first: int) -> list[Row]:
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch(
            "SELECT g.id, g.status, g.prompt, g.created_at, m.slug, m.cost_credits, a.id, a.kind, a.size"
            " FROM (SELECT * FROM generations WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2) g"
            " JOIN models m ON m.id = g.model_id JOIN assets a ON a.generation_id = g.id"
            " ORDER BY g.created_at DESC, g.id",
            user_id,
            first,
        )
    finally:
        await conn.close()
    return _rows([tuple(r) for r in records])


async def expected_genhub(url: str, user_id: uuid.UUID, first: int) -> list[Row]:
    """From genhub's tables through SQLAlchemy Core (PostgreSQL or SQLite alike)."""
    from datetime import UTC

    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from infrastructure.db.models import AssetRow, GenerationRow, ModelRow

    g, m, a = GenerationRow.__table__, ModelRow.__table__, AssetRow.__table__
    latest = select(g).where(g.c.user_id == user_id).order_by(g.c.created_at.desc(), g.c.id.desc()).limit(first)
    page = latest.subquery()
    stmt = (
        select(
            page.c.id,
            page.c.status,
            page.c.prompt,
            page.c.created_at,
            m.c.slug,
            m.c.cost_credits,
            a.c.id,
            a.c.kind,
            a.c.size,
        )
        .join(m, m.c.id == page.c.model_id)
        .join(a, (a.c.generation_id == page.c.id) & (a.c.kind == "output"))
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            records = [tuple(r) for r in await conn.execute(stmt)]
    finally:
        await engine.dispose()
    # SQLite gives naive datetimes back (stored as UTC)
    return _rows([(r[0], r[1], r[2], r[3] if r[3].tzinfo else r[3].replace(tzinfo=UTC), *r[4:]) for r in records])


def verify(name: str, raw: bytes, want: list[Row], first: int) -> str:
    """A one-line summary; raises ValueError naming the first differences."""
    got = normalize(raw)
    problems = [f"{len(got)} generations, {first} expected"] if len(got) != first or len(want) != first else []
    problems += [f"row {i}:\n  got  {g}\n  want {w}" for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
    if problems:
        raise ValueError(f"{name} answers wrongly:\n" + "\n".join(problems[:4]))
    assets = sum(len(r[6]) for r in got)
    return f"{name}: {len(got)} generations, {assets} assets, as in its database ({len(raw)} bytes)"
