"""A minimal in-process WebSocket client for an ASGI app, on the test's own event loop.

httpx's ASGITransport speaks HTTP only, and Starlette's TestClient runs the app on a
thread with an event loop of its own (a second lifespan, a second container). This drives
the very app instance the test already started, so its memory broadcast and database are shared.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any


class WebSocketClosed(Exception):
    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason


class AsgiWebSocket:
    def __init__(
        self,
        app: Any,
        path: str = "/graphql",
        *,
        subprotocols: tuple[str, ...] = ("graphql-transport-ws",),
        headers: dict[str, str] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
    ) -> None:
        self.app = app
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": client,
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols),
            "state": {},
        }
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.subprotocol: str | None = None

    async def __aenter__(self) -> AsgiWebSocket:
        await self._to_app.put({"type": "websocket.connect"})
        self._task = asyncio.create_task(self.app(self.scope, self._to_app.get, self._from_app.put))
        first = await asyncio.wait_for(self._from_app.get(), 5)
        if first["type"] == "websocket.close":
            raise WebSocketClosed(first.get("code", 1000), first.get("reason", ""))
        assert first["type"] == "websocket.accept", first
        self.subprotocol = first.get("subprotocol")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except TimeoutError:
                self._task.cancel()

    async def send_json(self, message: dict[str, Any]) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def send_text(self, text: str) -> None:
        """A text frame as it is, valid JSON or not."""
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """A binary frame."""
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    async def receive_json(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message; WebSocketClosed when the server closed; TimeoutError when nothing came."""
        event = await asyncio.wait_for(self._from_app.get(), timeout)
        if event["type"] == "websocket.close":
            raise WebSocketClosed(event.get("code", 1000), event.get("reason", ""))
        text = event.get("text") or (event.get("bytes") or b"").decode()
        message: dict[str, Any] = json.loads(text)
        return message
