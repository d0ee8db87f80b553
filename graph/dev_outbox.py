"""GET /dev/outbox and /dev/outbox/{id|latest}: the local outbox as plain text, in development only.

Served only when this process writes mail to the outbox (no SMTP_HOST) and is not in
production; everywhere else both paths answer 404 as if they did not exist. Messages are
shown as text/plain with nosniff, so an HTML part is never rendered by the browser.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from infrastructure.bootstrap import Services
from infrastructure.mail.outbox import Outbox

router = APIRouter()
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _outbox(request: Request) -> Outbox | None:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None or services.settings.is_production:
        return None
    return services.mail_outbox


def _text(body: str | bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain; charset=utf-8", headers=HEADERS)


@router.get("/dev/outbox", include_in_schema=False)
async def outbox_list(request: Request) -> Response:
    outbox = _outbox(request)
    if outbox is None:
        return _text("Not found.", 404)
    entries = await asyncio.to_thread(outbox.entries)
    lines = [f"{e.id}  {e.date}  to {e.to}  {e.subject}" for e in reversed(entries)]
    header = (
        f"{len(entries)} message(s) in {outbox.directory}, newest first; open /dev/outbox/<id> or /dev/outbox/latest"
    )
    return _text("\n".join([header, "", *lines]) + "\n")


@router.get("/dev/outbox/{entry_id}", include_in_schema=False)
async def outbox_message(entry_id: str, request: Request) -> Response:
    outbox = _outbox(request)
    raw = None if outbox is None else await asyncio.to_thread(outbox.read, entry_id)
    return _text("Not found.", 404) if raw is None else _text(raw)
