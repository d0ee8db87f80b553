"""Request ids: taken from `X-Request-ID` when sane, otherwise new; echoed back and bound to logs.

A plain ASGI middleware (not BaseHTTPMiddleware, which costs a task group per request).
"""

from __future__ import annotations

import uuid

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.logging_setup import bind_request_id


def _incoming(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.isprintable():
                return text
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
