"""Request ids: taken from `X-Request-ID` when sane (letters, digits, `._:-`, at most 64), otherwise new; echoed back and bound to logs.

A plain ASGI middleware (not BaseHTTPMiddleware, which costs a task group per request).
"""

from __future__ import annotations

import re
import uuid

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.logging_setup import bind_request_id

#: What a client-chosen id may hold: it is echoed in headers and logs, and searched for in both.
SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _incoming(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and SANE_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


def request_id_of(connection: HTTPConnection) -> str:
    """The id the middleware gave this request (and its `X-Request-ID` header); a new one without it."""
    rid: str | None = getattr(connection.state, "request_id", None)
    return rid or uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _incoming(scope)
        scope.setdefault("state", {})["request_id"] = rid
        bind_request_id(rid)

        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                headers.append(header)  # (no inner layer sets it)
            await send(message)

        await self.app(scope, receive, send_with_id)
