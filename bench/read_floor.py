"""The read benchmark's floor: the history page's data work with no GraphQL engine.

A bare ASGI app for uvicorn. POST /graphql takes PostGraphile's request body, reads only
`variables.userId` and `variables.first` (the query text is ignored: no parsing, validation
or execution), fetches the user's latest generations with their model and assets in one
round trip on raw asyncpg (a prepared statement; uuids cast to text in SQL, orjson cannot
encode asyncpg's UUID type; instants as PostgreSQL writes them in JSON, as PostGraphile
does), and answers with orjson in PostGraphile's shape and bytes (same field names and
order, BigInt `size` as a string). Whatever a GraphQL server spends per request above this
is engine overhead. GET /health answers {"ok": true}.

    READ_FLOOR_DSN=postgresql://... .venv/bin/python -m uvicorn bench.read_floor:app --port 8001 --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

DSN = os.environ.get("READ_FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/genhub_read_plain")
POOL_SIZE = int(os.environ.get("READ_FLOOR_POOL", "10"))
MAX_FIRST = 100
PAGE_SQL = """
SELECT g.id::text AS id, g.status, g.prompt, to_json(g.created_at) #>> '{}' AS created_at, m.slug, m.cost_credits,
       a.id::text AS asset_id, a.kind, a.size
FROM (SELECT * FROM generations WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2) g
JOIN models m ON m.id = g.model_id
LEFT JOIN assets a ON a.generation_id = g.id
ORDER BY g.created_at DESC, g.id, a.id
"""
JSON_HEADERS = [(b"content-type", b"application/json")]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_pool: list[asyncpg.Pool] = []


async def latest_generations(pool: asyncpg.Pool, user_id: str, first: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    current: dict[str, Any] = {"id": None}
    for r in await pool.fetch(PAGE_SQL, user_id, first):
        if current["id"] != r["id"]:
            current = {
                "id": r["id"],
                "status": r["status"],
                "prompt": r["prompt"],
                "createdAt": r["created_at"],
                "modelByModelId": {"slug": r["slug"], "costCredits": r["cost_credits"]},
                "assetsByGenerationId": {"nodes": []},
            }
            nodes.append(current)
        if r["asset_id"] is not None:
            current["assetsByGenerationId"]["nodes"].append(
                {"id": r["asset_id"], "kind": r["kind"], "size": str(r["size"])}
            )
    return nodes


async def _answer(send: Send, status: int, payload: object) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _pool.append(await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for pool in _pool:
                await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        await _answer(send, 200, {"ok": True})
        return
    if scope["path"] != "/graphql" or scope["method"] != "POST":
        await _answer(send, 404, {"errors": [{"message": "not found"}], "data": None})
        return
    try:
        variables = orjson.loads(await _body(receive)).get("variables") or {}
        user_id, first = str(variables["userId"]), min(int(variables.get("first", 20)), MAX_FIRST)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        await _answer(send, 400, {"errors": [{"message": "expected a JSON body with variables.userId"}], "data": None})
        return
    try:
        nodes = await latest_generations(_pool[0], user_id, first)
    except asyncpg.DataError as exc:  # a malformed uuid
        await _answer(send, 200, {"errors": [{"message": str(exc)}], "data": None})
        return
    await _answer(send, 200, {"data": {"allGenerations": {"nodes": nodes}}})
