"""Observability of the API: one metric sample and one log line per GraphQL operation, and GET /metrics.

`install_observability(app)` sets `app.state.observe_operation`, the hook graph/http.py calls
after each operation; the WebSocket endpoint may call `observe_operation` the same way.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from domain.errors import DomainError
from infrastructure.bootstrap import Services
from infrastructure.logging_setup import log_operation
from infrastructure.metrics import observe_graphql, render

log = logging.getLogger("genhub.metrics")
router = APIRouter()
# The operation's own name when the client did not send `operationName` (most do not).
_DECLARED_NAME = re.compile(r"^\s*(?:#[^\n]*\n\s*)*(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)")


def operation_name(params: Any) -> str | None:
    name: str | None = getattr(params, "operation_name", None)
    if name:
        return name
    match = _DECLARED_NAME.match(getattr(params, "query", "") or "")
    return match.group(1) if match else None


def outcome_of(result: Any) -> str:
    """ok, error (some field failed) or rejected (nothing ran: parse, validation, limits)."""
    errors = getattr(result, "errors", None) or []
    if not errors:
        return "ok"
    if getattr(result, "data", None) is None and all(not e.path for e in errors):
        return "rejected"
    return "error"


def viewer_id(context: Any) -> str | None:
    try:
        viewer = context.viewer
    except DomainError:  # a bad token: the operation says so itself
        return None
    return str(viewer.user_id) if viewer is not None else None


def observe_operation(context: Any, params: Any, result: Any, seconds: float) -> None:
    name = operation_name(params)
    outcome = outcome_of(result)
    observe_graphql(name, outcome, seconds)
    codes = [str((e.extensions or {}).get("code", "")) for e in (getattr(result, "errors", None) or [])]
    log_operation(
        request_id=getattr(context, "request_id", "-"),
        user_id=viewer_id(context),
        operation_name=name,
        duration_ms=round(seconds * 1000, 2),
        outcome=outcome,
        error_codes=codes,
    )


def scrape_allowed(request: Request, token: str) -> bool:
    """No token configured: anyone who reaches /metrics; else only `Authorization: Bearer <token>`."""
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    if not scrape_allowed(request, services.settings.metrics_token):
        return Response(
            "GET /metrics needs the bearer token set in METRICS_TOKEN.\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    await services.refresh_queue_metrics()
    try:
        await services.refresh_provider_metrics()
    except Exception:  # an outage of the database or Redis must not take /metrics down with it
        log.warning("provider health gauges not refreshed", exc_info=True)
    body, content_type = render()
    return Response(body, media_type=content_type)


def install_observability(app: FastAPI) -> None:
    app.state.observe_operation = observe_operation
    app.include_router(router)
