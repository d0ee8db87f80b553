"""Hostile WebSocket frames and HTTP bodies are refused cleanly (security issue #15, point 9).

Whatever a client sends at /graphql (nesting thousands deep, random bytes, binary frames,
JSON of the wrong shape, oversize frames, floods of small messages), the answer is a
protocol error or a close with 4400 over WebSocket (legacy graphql-ws: ``connection_error``
first, or an ``error`` reply for a well-formed object of the wrong shape) and a 400 in the
usual error shape over HTTP: never an unhandled exception, an ERROR log line or a hang,
and the server answers /health afterwards. The app is the real one (SQLite, memory
broadcast); the uvicorn-only behaviour (1009 over WS_MAX_MESSAGE_BYTES, 1007 for invalid
UTF-8) is in tests/e2e/test_security_frames.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graph.websocket
from infrastructure.json_input import MAX_DEPTH
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app
from tests.integration.asgi_websocket import AsgiWebSocket, WebSocketClosed

#: WS_MAX_MESSAGE_BYTES of the module's app: deep nestings fit below it, oversize frames stay cheap.
LIMIT = 64 * 1024
TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
PROTOCOLS = (TRANSPORT, LEGACY)
BAD_REQUEST = 4400
HOSTILE = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CREDITS = "subscription Credits { creditsChanged { balance } }"


@dataclass
class World:
    client: GraphQLClient
    token: str


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    config = app_settings(
        tmp_path_factory.mktemp("frames"),
        ws_max_message_bytes=LIMIT,
        simulated_mode="hang",
        kie_api_key="frames-kie-key",
        kie_callback_secret="frames-callback-secret",
    )
    async with running_app(config) as client:
        session = await register_user(client, "frames@example.com")
        yield World(client, session["accessToken"])


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records() -> Iterator[Records]:
    """Every log record of the test; none may be an ERROR (an unhandled exception logs one)."""
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    errors = [r for r in handler.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage()[:300], r.exc_text) for r in errors]


async def assert_healthy(world: World) -> None:
    """The server still answers: /health, and a new connection is acknowledged."""
    assert (await world.client.http.get("/health")).status_code == 200
    async with AsgiWebSocket(world.client.app, subprotocols=(TRANSPORT,)) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"token": world.token}})
        assert (await ws.receive_json())["type"] == "connection_ack"


async def next_message(ws: AsgiWebSocket) -> dict[str, Any]:
    """The next message that is not a keep-alive (legacy `ka`, transport `ping`)."""
    while True:
        message = await ws.receive_json()
        if message.get("type") not in ("ka", "ping"):
            return message


async def closed(ws: AsgiWebSocket) -> WebSocketClosed:
    """The close the server sends next (keep-alives skipped); fails on any other message."""
    try:
        message = await next_message(ws)
    except WebSocketClosed as exc:
        assert len(exc.reason.encode()) <= 123, exc.reason  # what a close frame can carry
        return exc
    raise AssertionError(f"expected a close, got {message}")


async def initialised(ws: AsgiWebSocket, token: str) -> None:
    await ws.send_json({"type": "connection_init", "payload": {"token": token}})
    assert (await next_message(ws))["type"] == "connection_ack"


async def send_frame(ws: AsgiWebSocket, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    else:
        await ws.send_text(frame)


# ---------------------------------------------------------------- strategies


@st.composite
def deep_nesting(draw: st.DrawFn, min_depth: int = MAX_DEPTH + 1, max_depth: int = 8000) -> str:
    """`[` and `{"k":` nested past the limit, closed or not, with or without a leaf."""
    depth = draw(st.integers(min_depth, max_depth))
    pattern = draw(st.lists(st.sampled_from(["[", '{"k":', '{"":']), min_size=1, max_size=3))
    openers = [pattern[i % len(pattern)] for i in range(depth)]
    text = "".join(openers) + draw(st.sampled_from(["1", '"[{"', "null", ""]))
    if draw(st.booleans()):
        text += "".join("]" if o == "[" else "}" for o in reversed(openers))
    return text


def in_message(value: str, spot: str) -> str:
    """`value` (JSON text) as a whole frame or inside a message where clients put their own data."""
    if spot == "init":
        return '{"type":"connection_init","payload":{"headers":' + value + "}}"
    if spot == "variables":
        return '{"type":"subscribe","id":"1","payload":{"query":"subscription { x }","variables":{"v":' + value + "}}}"
    if spot == "ping":
        return '{"type":"ping","payload":{"p":' + value + "}}"
    return value


def not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
NOT_OBJECTS = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
SPOTS = st.sampled_from(["frame", "init", "variables", "ping"])

#: Frames that are no JSON object at all: each must end the connection with 4400.
undecodable_frames = st.one_of(
    st.builds(in_message, deep_nesting(), SPOTS),
    st.binary(max_size=300),
    st.text(max_size=200).filter(not_json),
    NOT_OBJECTS.map(json.dumps),
    st.builds(
        in_message,
        st.sampled_from(["NaN", "-Infinity", "Infinity", "1e999", "9" * 5000, "[1,]", '"\\x"', '"unterminated']),
        SPOTS,
    ),
    # over the size limit, counted in UTF-8 bytes ("é" is two of them)
    st.integers(1, 2000).map(lambda extra: '{"type":"ping","payload":{"pad":"' + "x" * (LIMIT + extra) + '"}}'),
    st.integers(1, 2000).map(lambda extra: '{"type":"ping","payload":{"pad":"' + "é" * (LIMIT // 2 + extra) + '"}}'),
)

KNOWN_TYPES = frozenset(
    {"connection_init", "connection_terminate", "ping", "pong", "subscribe", "complete", "start", "stop"}
)
BAD_IDS = st.sampled_from([5, None, "", "x" * 65, [], {}, True, "\ud800"])
BAD_PAYLOADS = st.sampled_from(
    [
        "x",
        5,
        [],
        {},
        {"query": 5},
        {"query": None},
        {"query": CREDITS, "variables": [1]},
        {"query": CREDITS, "variables": "x"},
        {"query": CREDITS, "operationName": 5},
        {"query": CREDITS, "extensions": "x"},
    ]
)


@st.composite
def malformed_message(draw: st.DrawFn, protocol: str) -> dict[str, Any]:
    """A JSON object whose type or fields are wrong for `protocol`."""
    operation, stop = ("subscribe", "complete") if protocol == TRANSPORT else ("start", "stop")
    kind = draw(st.sampled_from(["type", "unknown", "operation-id", "operation-payload", "stop-id"]))
    if kind == "type":
        return {"type": draw(st.none() | st.integers() | st.lists(st.integers(), max_size=2) | st.just({})), "id": "1"}
    if kind == "unknown":
        name = draw(st.text(max_size=300).filter(lambda t: t not in KNOWN_TYPES))
        return {"type": name, "id": "1", "payload": {}}
    if kind == "operation-id":
        return {"type": operation, "id": draw(BAD_IDS), "payload": {"query": CREDITS}}
    if kind == "operation-payload":
        return {"type": operation, "id": "1", "payload": draw(BAD_PAYLOADS)}
    return {"type": stop, "id": draw(BAD_IDS)}


# ---------------------------------------------------------------- WebSocket: frames that do not decode


@HOSTILE
@given(frame=undecodable_frames, protocol=st.sampled_from(PROTOCOLS), after_init=st.booleans())
async def test_a_frame_that_is_no_acceptable_json_object_closes_with_4400(
    world: World, log_records: Records, frame: str | bytes, protocol: str, after_init: bool
) -> None:
    async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
        # given a connection, acknowledged or not yet
        if after_init:
            await initialised(ws, world.token)
        # when the frame arrives
        await send_frame(ws, frame)
        # then legacy clients first hear why, in the message subscriptions-transport-ws uses for it
        if protocol == LEGACY:
            error = await next_message(ws)
            assert error["type"] == "connection_error", error
            assert isinstance(error["payload"]["message"], str)
        # and the connection is closed with 4400 and a reason
        refusal = await closed(ws)
        assert refusal.code == BAD_REQUEST, refusal
        assert refusal.reason
    # and the refusal was logged
    assert any(r.name == "genhub.websocket" and r.levelno == logging.WARNING for r in log_records.records)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_reported_attacks_close_with_4400_and_the_server_stays_up(
    world: World, log_records: Records, protocol: str
) -> None:
    operation = "subscribe" if protocol == TRANSPORT else "start"
    attacks = [
        "[" * 5000,
        "{" * 5000,
        '{"type":"' + operation + '","id":"1","payload":{"query":"' + CREDITS + '","variables":'
        + '{"a":' * 5000 + "1" + "}" * 5000 + "}}",
        '{"type":"connection_init","payload":' + '{"a":[' * 2500 + "]}" * 2500 + "}",
    ]  # fmt: skip
    for attack in attacks:
        for after_init in (False, True):
            async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
                # given a connection
                if after_init:
                    await initialised(ws, world.token)
                # when the attacker's frame arrives
                await ws.send_text(attack)
                # then it is refused for its depth
                if protocol == LEGACY:
                    assert (await next_message(ws))["type"] == "connection_error"
                refusal = await closed(ws)
                assert (refusal.code, refusal.reason) == (
                    BAD_REQUEST,
                    f"Message is not acceptable JSON: JSON nested deeper than {MAX_DEPTH} levels",
                )
    # and the server still answers
    await assert_healthy(world)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_nesting_at_the_limit_is_accepted(world: World, protocol: str) -> None:
    # given a connection_init whose payload brings the frame to exactly MAX_DEPTH levels
    headers = '{"a":' * (MAX_DEPTH - 2) + "1" + "}" * (MAX_DEPTH - 2)
    async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
        # when it is sent (the token sits beside the nesting)
        await ws.send_text(
            '{"type":"connection_init","payload":{"token":' + json.dumps(world.token) + ',"deep":' + headers + "}}"
        )
        # then the connection is acknowledged as usual
        assert (await next_message(ws))["type"] == "connection_ack"


# ---------------------------------------------------------------- WebSocket: JSON objects of the wrong shape


@HOSTILE
@given(data=st.data(), protocol=st.sampled_from(PROTOCOLS), after_init=st.booleans())
async def test_a_message_of_the_wrong_shape_gets_the_protocols_error(
    world: World, log_records: Records, data: st.DataObject, protocol: str, after_init: bool
) -> None:
    message = data.draw(malformed_message(protocol))
    async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
        # given a connection, acknowledged or not yet
        if after_init:
            await initialised(ws, world.token)
        # when the malformed message arrives
        await ws.send_text(json.dumps(message))
        if protocol == TRANSPORT:
            # then graphql-transport-ws closes with 4400, as its protocol prescribes
            assert (await closed(ws)).code == BAD_REQUEST
            return
        # then legacy graphql-ws answers with an error (as subscriptions-transport-ws does)
        error = await next_message(ws)
        assert error["type"] == "error", error
        assert isinstance(error["payload"]["message"], str)
        assert error["id"] in ("1", None)
        # and the connection goes on
        if not after_init:
            await initialised(ws, world.token)
        await ws.send_json({"type": "start", "id": "ok", "payload": {"query": "query { __typename }"}})
        assert (await next_message(ws))["id"] == "ok"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_bad_connection_init_payload_closes_with_4400(world: World, protocol: str) -> None:
    for payload in ("x", 5, [], True):
        async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
            # when connection_init carries a payload that is not an object
            await ws.send_json({"type": "connection_init", "payload": payload})
            # then the connection is refused with 4400 (legacy: connection_error first)
            if protocol == LEGACY:
                assert (await next_message(ws))["type"] == "connection_error"
            assert (await closed(ws)).code == BAD_REQUEST


async def test_a_long_syntax_error_closes_with_a_reason_cut_to_what_a_close_frame_carries(world: World) -> None:
    async with AsgiWebSocket(world.client.app, subprotocols=(TRANSPORT,)) as ws:
        await initialised(ws, world.token)
        # when a subscribe's document fails to parse with a message that quotes a long token
        query = "subscription { " + '"' + "é" * 300 + '" }'
        await ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": query}})
        # then the close says so within 123 bytes (`closed` checks the length)
        refusal = await closed(ws)
        assert refusal.code == BAD_REQUEST
        assert refusal.reason.startswith("Syntax Error")


# ---------------------------------------------------------------- WebSocket: floods of small messages


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscriptions_per_connection_are_capped_and_the_connection_survives_a_flood(
    world: World, log_records: Records, protocol: str
) -> None:
    operation, stop = ("subscribe", "complete") if protocol == TRANSPORT else ("start", "stop")
    async with AsgiWebSocket(world.client.app, subprotocols=(protocol,)) as ws:
        await initialised(ws, world.token)
        # given the 50 subscriptions a connection may hold, all open
        for i in range(50):
            await ws.send_json({"type": operation, "id": f"s{i}", "payload": {"query": CREDITS}})
        # when one more is asked for
        await ws.send_json({"type": operation, "id": "one-too-many", "payload": {"query": CREDITS}})
        # then it is refused with an error, not a crash
        error = await next_message(ws)
        assert (error["type"], error["id"]) == ("error", "one-too-many")
        assert "Subscription limit reached" in json.dumps(error["payload"])
        # and a flood of small messages is answered one by one (transport: ping -> pong)
        if protocol == TRANSPORT:
            for _ in range(500):
                await ws.send_json({"type": "ping"})
            for _ in range(500):
                assert (await next_message(ws))["type"] == "pong"
        # and releasing one makes room again
        await ws.send_json({"type": stop, "id": "s0"})
        if protocol == LEGACY:
            assert (await next_message(ws)) == {"type": "complete", "id": "s0"}
        await ws.send_json({"type": operation, "id": "again", "payload": {"query": "subscription { x }"}})
        again = await next_message(ws)
        assert again["id"] == "again" and again["type"] == "error", again  # no such field: validation
    await assert_healthy(world)


async def test_a_legacy_client_that_never_initialises_is_closed_with_4408(
    world: World, log_records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a short connection_init deadline (graphql-transport-ws has strawberry's 4408; legacy now too)
    monkeypatch.setattr(graph.websocket, "CONNECTION_INIT_TIMEOUT", timedelta(seconds=0.2))
    async with AsgiWebSocket(world.client.app, subprotocols=(LEGACY,)) as acknowledged:
        # and an acknowledged legacy connection
        await initialised(acknowledged, world.token)
        async with AsgiWebSocket(world.client.app, subprotocols=(LEGACY,)) as idle:
            # when another client only sends malformed messages, never connection_init
            await idle.send_json({"type": "bogus"})
            assert (await next_message(idle))["type"] == "error"
            # then it is closed at the deadline instead of staying open for ever
            refusal = await closed(idle)
            assert (refusal.code, refusal.reason) == (4408, "Connection initialisation timeout")
        # and the acknowledged connection, older than the deadline by now, still answers
        await acknowledged.send_json({"type": "start", "id": "later", "payload": {"query": "query { __typename }"}})
        assert (await next_message(acknowledged))["id"] == "later"


# ---------------------------------------------------------------- HTTP: bodies, GET parameters, multipart fields

TYPENAME = "{ __typename }"
ACCEPTS = st.sampled_from(["application/json", "application/graphql-response+json"])


def assert_refused(status: int, body: Any, message: str | None = None) -> None:
    """A 400 in the usual error shape: one error with a message, code BAD_REQUEST and the request id."""
    assert status == 400, body
    assert isinstance(body, dict) and list(body) == ["errors"], body
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"]
    if message is not None:
        assert error["message"] == message


def around(value: str, spot: str) -> str:
    """JSON text `value` as a whole body or where a request carries client data."""
    query = json.dumps(TYPENAME)
    if spot == "variables":
        return '{"query":' + query + ',"variables":{"v":' + value + "}}"
    if spot == "extensions":
        return '{"query":' + query + ',"extensions":' + value + "}"
    if spot == "batch":
        return '[{"query":' + query + "}," + value + "]"
    return value


BODY_SPOTS = st.sampled_from(["body", "variables", "extensions", "batch"])
hostile_bodies = st.one_of(
    st.builds(around, deep_nesting(max_depth=20000), BODY_SPOTS).map(str.encode),
    st.builds(around, st.sampled_from(["NaN", "Infinity", "-1e999", "7" * 5000, "[1,]"]), BODY_SPOTS).map(str.encode),
    st.binary(max_size=300),
    st.binary(min_size=1, max_size=20).map(lambda junk: b'{"query":"' + b"\xff" + junk + b'"}'),
    NOT_OBJECTS.map(lambda v: json.dumps(v).encode()),
)


@HOSTILE
@given(body=hostile_bodies, accept=ACCEPTS)
async def test_a_hostile_json_body_is_a_400(world: World, log_records: Records, body: bytes, accept: str) -> None:
    # when the body is posted as JSON
    response = await world.client.http.post(
        "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
    )
    # then it is refused in the usual error shape, never a 500
    assert_refused(response.status_code, response.json())


@HOSTILE
@given(
    value=deep_nesting(max_depth=2000) | st.sampled_from(["NaN", "[1e999]", "{", "[1,]"]),
    key=st.sampled_from(["variables", "extensions"]),
)
async def test_hostile_get_parameters_are_a_400(world: World, log_records: Records, value: str, key: str) -> None:
    # when a GET carries the value as its variables or extensions
    response = await world.client.http.get(
        "/graphql", params={"query": TYPENAME, key: value}, headers={"accept": "application/json"}
    )
    # then it is refused as JSON the server will not read
    assert_refused(response.status_code, response.json(), f"`{key}` is not valid JSON.")


@HOSTILE
@given(value=deep_nesting(max_depth=5000), field=st.sampled_from(["operations", "map"]))
async def test_hostile_multipart_fields_are_a_400(world: World, log_records: Records, value: str, field: str) -> None:
    # given a multipart upload whose operations or map nest too deep
    form = {
        "operations": json.dumps({"query": TYPENAME, "variables": {"file": None}}),
        "map": '{"0": ["variables.file"]}',
    }
    form[field] = value
    # when it is posted
    response = await world.client.http.post(
        "/graphql",
        data=form,
        files={"0": ("a.bin", b"data", "application/octet-stream")},
        headers={"GraphQL-Require-Preflight": "1"},
    )
    # then it is refused as JSON the server will not read
    assert_refused(response.status_code, response.json(), "`operations` and `map` must be JSON.")


async def test_the_reported_body_of_a_million_brackets_is_a_400_and_the_server_stays_up(
    world: World, log_records: Records
) -> None:
    for body in (b"[" * 1_000_000, b'{"query":"{ __typename }","variables":' + b'{"a":' * 200_000):
        # when the body is posted
        response = await world.client.http.post("/graphql", content=body, headers={"content-type": "application/json"})
        # then it is refused for what it is
        assert_refused(response.status_code, response.json(), "The request body is not valid JSON.")
    # and the server still answers
    await assert_healthy(world)


async def test_nesting_at_the_limit_is_accepted_over_http(world: World) -> None:
    # given variables that bring the body to exactly MAX_DEPTH levels
    value = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    body = '{"query":"{ __typename }","variables":{"v":' + value + "}}"
    # when it is posted
    response = await world.client.http.post("/graphql", content=body, headers={"content-type": "application/json"})
    # then it runs
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}, response.text


@pytest.mark.parametrize("raw", ["%FF%FE%5B", "%C0%80", "%ED%A0%80", "%5B" * 3000])
async def test_get_variables_that_are_not_utf8_or_too_deep_are_a_400(world: World, raw: str) -> None:
    # when a GET's variables are percent-encoded bytes that are no UTF-8 (or nest too deep)
    response = await world.client.http.get(
        f"/graphql?query=%7B__typename%7D&variables={raw}", headers={"accept": "application/json"}
    )
    # then they are refused as JSON the server will not read
    assert_refused(response.status_code, response.json(), "`variables` is not valid JSON.")


@HOSTILE
@given(body=hostile_bodies)
async def test_a_hostile_provider_callback_body_is_a_400(world: World, log_records: Records, body: bytes) -> None:
    # given a callback with a fresh timestamp (the body is read before the signature, which covers only the task id)
    headers = {"X-Webhook-Signature": "c2ln", "X-Webhook-Timestamp": str(int(time.time()))}
    # when its body is hostile
    response = await world.client.http.post("/providers/kie/callback", content=body, headers=headers)
    # then it is refused as malformed, never a 500
    assert (response.status_code, response.json()) == (400, {"error": "malformed callback"})
