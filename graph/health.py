"""Liveness and readiness: /health answers while the process runs, /ready checks dependencies."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from infrastructure.container import Container

log = logging.getLogger("genhub.health")
router = APIRouter()
CHECK_TIMEOUT = 3.0


@router.get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _database(container: Container) -> None:
    async with container.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(container: Container) -> None:
    assert container.redis is not None
    await container.redis.ping()


async def _storage(container: Container) -> None:
    await container.storage.check()


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    container: Container = request.app.state.container
    checks = {"database": _database(container), "storage": _storage(container)}
    if container.redis is not None:
        checks["redis"] = _redis(container)
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"failing: {type(exc).__name__}"
    failing = sorted(k for k, v in results.items() if v != "ok")
    status = 503 if failing else 200
    return JSONResponse(
        {"status": "ready" if not failing else "unavailable", "failing": failing, "checks": results}, status
    )
