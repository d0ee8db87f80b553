"""A GraphQL over SSE client for the tests: one streamed POST (or GET) per operation, read in the background."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

EVENT_STREAM = "text/event-stream"


@dataclass
class SseStream:
    """An open response: its status and headers at once, then its messages as they arrive.

    `messages` holds `{"event": ..., "data": <decoded JSON or None>}`; `comments` counts keep-alives;
    `ended` is set once the server ended the response (with or without `complete`).
    """

    response: httpx.Response
    client: httpx.AsyncClient
    messages: list[dict[str, Any]] = field(default_factory=list)
    comments: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def is_stream(self) -> bool:
        return self.response.headers.get("content-type", "").startswith(EVENT_STREAM)

    @property
    def results(self) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if m["event"] == "next"]

    @property
    def completed(self) -> bool:
        return any(m["event"] == "complete" for m in self.messages)

    async def _read(self) -> None:
        fields: dict[str, list[str]] = {}
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if fields:
                        data = "\n".join(fields.get("data", []))
                        self.messages.append({"event": fields["event"][0], "data": json.loads(data) if data else None})
                        self.changed.set()
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                    self.changed.set()
                else:
                    name, _, value = line.partition(":")
                    fields.setdefault(name, []).append(value.removeprefix(" "))
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()
            self.changed.set()

    async def wait_for(self, condition: Any, timeout: float = 15.0, what: str = "a condition") -> None:
        """Until `condition(self)` holds (checked on every message)."""
        async with asyncio.timeout(timeout):
            while not condition(self):
                if self.ended.is_set() and not condition(self):
                    raise AssertionError(f"the stream ended before {what}: {self.messages}")
                self.changed.clear()
                await self.changed.wait()

    async def wait_ended(self, timeout: float = 15.0) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)

    async def close(self) -> None:
        """Disconnect (as a client that goes away)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.response.aclose()
        await self.client.aclose()


async def open_stream(
    base_url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> SseStream:
    """Sends the operation with `Accept: text/event-stream`; a refusal is read in full (no reader)."""
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(15, read=None))
    sent = {"accept": EVENT_STREAM, **({"authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    if method == "GET":
        params = {"query": query, **({"variables": json.dumps(variables)} if variables else {})}
        request = client.build_request("GET", "/graphql", params=params, headers=sent)
    else:
        request = client.build_request("POST", "/graphql", json={"query": query, "variables": variables}, headers=sent)
    response = await client.send(request, stream=True)
    stream = SseStream(response, client)
    if stream.is_stream:
        stream._reader = asyncio.create_task(stream._read())
    else:
        await response.aread()
        stream.ended.set()
    return stream
