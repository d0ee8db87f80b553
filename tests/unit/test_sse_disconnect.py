"""What a client leaving an event stream does to its operation: a query or mutation runs to its
end (its result dropped), a subscription is cancelled at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from strawberry.types import ExecutionResult

from graph.sse import EventStream


class Leaving:
    """An ASGI channel whose client has left: every `receive` is a disconnect; writes are kept."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.left.set()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def test_a_mutation_runs_to_its_end_after_the_client_left_and_nothing_is_written() -> None:
    # given a mutation still at work when its client's disconnect arrives
    channel = Leaving()
    ended: list[str] = []

    async def mutation() -> AsyncGenerator[ExecutionResult, None]:
        await channel.left.wait()
        await asyncio.sleep(0)  # more work after the disconnect was seen
        ended.append("ran to its end")
        yield ExecutionResult(data={"createBoard": {"__typename": "BoardSuccess"}}, errors=None)

    stream = EventStream(channel.send, write_timeout=1.0, request_id="r")
    # when the stream runs it to completion
    await asyncio.wait_for(stream.run(mutation(), channel.receive, 60.0, to_completion=True), 5)
    # then the resolver finished and its result was dropped (the client is gone)
    assert ended == ["ran to its end"]
    assert not any(b"event: next" in m.get("body", b"") for m in channel.sent)


async def test_a_subscription_is_cancelled_as_soon_as_the_client_left() -> None:
    # given a subscription waiting for an event that never comes
    channel = Leaving()
    closed: list[str] = []

    async def subscription() -> AsyncGenerator[ExecutionResult, None]:
        try:
            await asyncio.Event().wait()
            yield ExecutionResult(data=None, errors=None)
        finally:
            closed.append("released")

    stream = EventStream(channel.send, write_timeout=1.0, request_id="r")
    # when its client disconnects
    await asyncio.wait_for(stream.run(subscription(), channel.receive, 60.0), 5)
    # then the stream ends at once and the subscription is released
    assert closed == ["released"]
