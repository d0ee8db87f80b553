"""Liveness and readiness: /health answers while the process runs, /ready checks dependencies."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infrastructure.bootstrap import Services

log = logging.getLogger("genhub.health")
router = APIRouter()
CHECK_TIMEOUT = 3.0


@router.get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    results: dict[str, str] = {}
    for name, check in services.probes.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"failing: {type(exc).__name__}"
    failing = sorted(k for k, v in results.items() if v != "ok")
    status = 503 if failing else 200
    return JSONResponse(
        {"status": "ready" if not failing else "unavailable", "failing": failing, "checks": results}, status
    )
