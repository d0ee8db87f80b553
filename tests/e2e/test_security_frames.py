"""Hostile WebSocket frames against a real `genhub serve` (uvicorn + websockets), over real sockets.

What the in-process client cannot show: the close frame as it goes over the wire (its
reason cut to what a control frame carries), uvicorn refusing a message over
WS_MAX_MESSAGE_BYTES with 1009 before the app reads it, and the websockets library
refusing a text frame that is no UTF-8 with 1007. The server keeps answering, and its
log holds the refusals as warnings, never a traceback or an ERROR line. And a client's offer
of permessage-deflate is declined (WS_COMPRESSION off by default).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.subscription_support import Api, Server, base_env, start_server

pytestmark = pytest.mark.slow

LIMIT = 64 * 1024
TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
CREDITS = "subscription Credits { creditsChanged { balance } }"


@dataclass
class Ended:
    """What a connection received before it was closed, and how it was closed."""

    messages: list[dict[str, Any]]
    code: int | None
    reason: str | None


@dataclass
class Running:
    server: Server
    token: str


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    tmp = tmp_path_factory.mktemp("frames-e2e")
    env = base_env(DATA_DIR=str(tmp / "data"), LOCAL_STORAGE_PATH=str(tmp / "chunks"), WS_MAX_MESSAGE_BYTES=str(LIMIT))
    server = await start_server(env, tmp, "serve-frames")
    api = Api(server.http_url)
    try:
        account = await api.register("frames")
        yield Running(server, account.token)
    finally:
        await api.aclose()
        await server.proc.stop()


async def connect(running: Running, protocol: str, *, init: bool) -> ClientConnection:
    ws = await websockets.connect(running.server.ws_url, subprotocols=[protocol], open_timeout=10)  # type: ignore[list-item]
    if init:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": running.token}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
    return ws


async def until_closed(ws: ClientConnection, timeout: float = 10.0) -> Ended:
    """Every message (keep-alives aside) until the server closes; fails after `timeout` (no hang)."""
    messages: list[dict[str, Any]] = []

    async def read() -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") not in ("ka", "ping"):
                    messages.append(message)
        except ConnectionClosed:
            pass

    await asyncio.wait_for(read(), timeout)
    return Ended(messages, ws.close_code, ws.close_reason)


def operation(protocol: str) -> str:
    return "subscribe" if protocol == TRANSPORT else "start"


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_undecodable_frames_close_with_4400_over_the_wire(running: Running, protocol: str) -> None:
    deep_variables = (
        '{"type":"' + operation(protocol) + '","id":"1","payload":{"query":"' + CREDITS + '","variables":'
        + '{"a":' * 5000 + "1" + "}" * 5000 + "}}"
    )  # fmt: skip
    cases: list[tuple[str | bytes, bool]] = [
        ("[" * 5000, False),
        ('{"type":"connection_init","payload":' + '{"h":[' * 2000 + "]}" * 2000 + "}", False),
        (deep_variables, True),
        (b'{"type":"connection_init"}', False),  # a binary frame, however well formed
        ("[1]", True),
        ('{"type":"ping","payload":{"x":NaN}}', True),
    ]
    for frame, init in cases:
        # given a connection, acknowledged or not
        ws = await connect(running, protocol, init=init)
        # when the frame arrives
        await ws.send(frame)
        ended = await until_closed(ws)
        # then the server closes with 4400 and a reason (legacy: after a connection_error)
        assert ended.code == 4400, (frame[:40], ended)
        assert ended.reason
        if protocol == LEGACY:
            assert [m["type"] for m in ended.messages] == ["connection_error"], ended
        else:
            assert ended.messages == [], ended


async def test_a_close_reason_quoting_client_text_is_cut_to_fit_a_close_frame(running: Running) -> None:
    # given an acknowledged graphql-transport-ws connection
    ws = await connect(running, TRANSPORT, init=True)
    # when a subscribe's document fails to parse with a message quoting a long token
    query = "subscription { " + '"' + "é" * 300 + '" }'
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
    ended = await until_closed(ws)
    # then the close arrives (4400) with a reason that fits a control frame
    assert ended.code == 4400, ended
    assert ended.reason is not None and ended.reason.startswith("Syntax Error")
    assert len(ended.reason.encode()) <= 123


@pytest.mark.parametrize("protocol", [TRANSPORT, LEGACY])
async def test_a_message_over_the_limit_is_refused_by_uvicorn_with_1009(running: Running, protocol: str) -> None:
    for init in (False, True):
        ws = await connect(running, protocol, init=init)
        # when a message one byte over WS_MAX_MESSAGE_BYTES arrives
        padding = "x" * (LIMIT + 1 - len('{"type":"ping","payload":{"p":""}}'))
        await ws.send('{"type":"ping","payload":{"p":"' + padding + '"}}')
        ended = await until_closed(ws)
        # then uvicorn (ws_max_size) closes with 1009, Message Too Big
        assert ended.code == 1009, ended


async def test_a_text_frame_that_is_no_utf8_is_refused_with_1007(running: Running) -> None:
    ws = await connect(running, TRANSPORT, init=True)
    # when a text frame carries bytes that are no UTF-8
    await ws.send(b'{"type":"ping","x":"\xff\xfe"}', text=True)
    ended = await until_closed(ws)
    # then the WebSocket layer refuses it: 1007, invalid frame payload data
    assert ended.code == 1007, ended
    # and uvicorn's report of it is a warning (logging_setup.ClientCausedFilter), not an error
    assert "WARNING uvicorn.error: Invalid UTF-8 sequence received from client." in running.server.proc.output()


async def test_the_server_answers_afterwards_and_logged_no_error(running: Running) -> None:
    # given the refusals of the tests before (or these, when it runs alone)
    ws = await connect(running, LEGACY, init=False)
    await ws.send("{" * 5000)
    assert (await until_closed(ws)).code == 4400
    # then /health answers and a new connection is acknowledged
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{running.server.http_url}/health")).status_code == 200
    ws = await connect(running, TRANSPORT, init=True)
    await ws.close()
    # and the log holds the refusals as warnings, without a traceback or an ERROR line
    output = running.server.proc.output()
    assert "refused: Message is not acceptable JSON: JSON nested deeper than 64 levels" in output
    assert "Traceback" not in output, output[-3000:]
    assert not re.search(r"\bERROR\b", output), output[-3000:]
    assert running.server.proc.alive()


async def test_compression_is_not_negotiated_by_default(running: Running) -> None:
    # given a client that offers permessage-deflate, as browsers do
    ws = await websockets.connect(
        running.server.ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        compression="deflate",
        open_timeout=10,
    )
    try:
        # then the server takes none (WS_COMPRESSION is off: zlib state on every connection costs memory)
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    finally:
        await ws.close()
