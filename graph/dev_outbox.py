"""GET /dev/outbox and /dev/outbox/{id|latest}: the local outbox as plain text, in development only.

Served only when this process writes mail to the outbox (no SMTP_HOST), is not in
production, and the request comes from this machine: the socket peer is a loopback
address (the real peer: uvicorn runs without proxy headers) and it names no forwarded
client (a proxy on this host relays others: X-Forwarded-For, Forwarded, X-Real-IP,
CF-Connecting-IP, True-Client-IP), and its Host is localhost, 127.0.0.1 or [::1] with any port
(a page of another site whose name was rebound to 127.0.0.1 sends its own name as Host, so the
browser's same-origin rule cannot be turned against the loopback check). Reset links are in
there, so a development server bound to 0.0.0.0 must not show them to the network. Everywhere else both paths
answer 404 as if they did not exist. Messages are
shown as text/plain with nosniff, so an HTML part is never rendered by the browser.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from infrastructure.bootstrap import Services
from infrastructure.mail.outbox import Outbox

router = APIRouter()
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


#: Headers by which a proxy on this host names the client it relays.
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip", "true-client-ip")
#: Host names of this machine itself, without the port.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::[0-9]*)?")


def _names_this_machine(host: str) -> bool:
    """Whether a Host header is localhost, 127.0.0.1 or [::1], with any port or none."""
    match = _HOST.fullmatch(host.strip().lower())
    return match is not None and match["name"] in LOOPBACK_HOSTS


def _from_this_machine(request: Request) -> bool:
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    if not _names_this_machine(request.headers.get("host", "")):
        return False
    try:
        peer = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:  # no peer, or a name rather than an address
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


def _outbox(request: Request) -> Outbox | None:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None or services.settings.is_production or not _from_this_machine(request):
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
