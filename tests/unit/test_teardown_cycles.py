"""A closed subscription or WebSocket leaves no reference cycle behind: its objects go when it ends, by
reference counting, instead of waiting for a full garbage collection (graph/subscriptions/execution.py,
entrypoints/uvicorn_protocols.py, graph/websocket.py `TransportWsHandler.run_operation`; bench/teardown.py counts what
closed connections leave).

Each check runs with the collector off: an object still alive after its last use is held by a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import strawberry
import uvicorn
import websockets
from graphql import parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Receive, Scope, Send
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.types import Info
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from entrypoints.uvicorn_protocols import ErrorReleasingWebSocketsProtocol, ReleasingHttpToolsProtocol
from graph.subscriptions.execution import FINISHED, PerEventMemoExecutionContext
from graph.websocket import TransportWsHandler


@pytest.fixture
def no_collector() -> Iterator[None]:
    """What the test drops must go by reference counting alone."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------- the subscription's executor


class RequestContext:
    """Stands for the connection's context (weakly referenceable, like graph.context.Context)."""


@strawberry.type
class Item:
    number: int

    @strawberry.field
    async def doubled(self) -> int:
        await asyncio.sleep(0)
        return self.number * 2


async def numbers(count: int) -> AsyncGenerator[Item, None]:
    for number in range(count):
        await asyncio.sleep(0)
        yield Item(number=number)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(number=n) for n in range(3)]

    @strawberry.field
    async def streamed(self) -> list[Item]:
        # An async iterable list (completed by the executor's `cancellable_iterable`) beside async fields.
        return numbers(3)  # type: ignore[return-value]


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def counted(self, info: Info, count: int) -> AsyncGenerator[Item, None]:
        async for item in numbers(count):
            yield item


schema = strawberry.Schema(query=Query, subscription=Subscription, execution_context_class=PerEventMemoExecutionContext)


async def subscribed(count: int, take: int) -> tuple[list[Any], weakref.ref[RequestContext]]:
    """Runs `subscription { counted(count) }`, reading `take` events (then closing it); its data, and the
    context it ran with (no longer referenced by the caller)."""
    context = RequestContext()
    watched = weakref.ref(context)
    stream = await schema.subscribe(
        "subscription ($count: Int!) { counted(count: $count) { number doubled } }",
        variable_values={"count": count},
        context_value=context,
    )
    del context
    received: list[Any] = []
    assert not isinstance(stream, strawberry.types.ExecutionResult)
    async for result in stream:
        assert not result.errors, result.errors
        received.append(result.data)
        if len(received) == take:
            break
    await stream.aclose()
    del stream
    return received, watched


async def test_a_subscription_that_ends_leaves_nothing_for_the_collector(no_collector: None) -> None:
    received, context = await subscribed(count=3, take=3)

    assert received == [{"counted": {"number": n, "doubled": 2 * n}} for n in range(3)]
    assert context() is None


async def test_a_subscription_closed_by_its_client_leaves_nothing_for_the_collector(no_collector: None) -> None:
    received, context = await subscribed(count=10, take=1)

    assert received == [{"counted": {"number": 0, "doubled": 0}}]
    assert context() is None


async def test_only_the_subscriptions_own_source_stream_finishes_its_executor() -> None:
    # A list field's async iterable (in a query, or within one event) ends while the rest of the operation
    # still runs: only the subscription's own executor, at the end of its source stream, is finished.
    query = PerEventMemoExecutionContext.build(schema._schema, parse("{ streamed { number } }"))
    subscription = PerEventMemoExecutionContext.build(
        schema._schema, parse("subscription { counted(count: 1) { number } }")
    )
    assert isinstance(query, PerEventMemoExecutionContext) and isinstance(subscription, PerEventMemoExecutionContext)
    event = subscription.build_per_event_executor({})
    for executor in (query, event):
        source = numbers(1)
        assert executor.cancellable_iterable(source) is source

    helpers = subscription.async_helpers
    stream = subscription.cancellable_iterable(numbers(1))
    assert [item.number async for item in stream] == [0]
    assert subscription.async_helpers is FINISHED and helpers is not FINISHED
    assert event.async_helpers is helpers  # an event already under way keeps what it was built with


# ---------------------------------------------------------------- uvicorn's HTTP protocol after an upgrade


async def echo_once(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts a WebSocket, echoes one message and closes; answers any other request 200."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    assert scope["type"] == "websocket"
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    message = await receive()
    if message["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text") or ""})
    await send({"type": "websocket.close", "code": 1000})


P = TypeVar("P", bound=asyncio.Protocol)


def watching(base: type[P], made: list[weakref.ref[Any]]) -> type[P]:
    """`base`, recording a weak reference to every instance in `made`."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    return Watched


KEEP_ALIVE_SECONDS = 0.2


@dataclass
class Served:
    port: int
    server: uvicorn.Server
    #: Every HTTP protocol instance the server made, watched.
    made: list[weakref.ref[Any]]
    #: Every WebSocket protocol instance it made, watched.
    made_ws: list[weakref.ref[Any]]

    def drained(self) -> None:
        """Returns once the server has seen every socket close."""
        deadline = time.monotonic() + 5
        while self.server.server_state.connections and time.monotonic() < deadline:
            time.sleep(0.01)


@contextmanager
def serving(
    protocol: type[HttpToolsProtocol], ws: type[WebSocketsSansIOProtocol] = ErrorReleasingWebSocketsProtocol
) -> Iterator[Served]:
    """`echo_once` served with `protocol` (and `ws` for WebSockets) on a free port in a thread."""
    made: list[weakref.ref[Any]] = []
    made_ws: list[weakref.ref[Any]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # A connection reset while idle leaves uvicorn's keep-alive timer holding its protocol until it fires: short.
    config = uvicorn.Config(
        echo_once,
        lifespan="off",
        log_level="critical",
        http=watching(protocol, made),
        ws=watching(ws, made_ws),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield Served(sock.getsockname()[1], server, made, made_ws)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def echo(port: int, text: str) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send(text)
        assert await ws.recv() == text


def upgraded_protocols(protocol: type[HttpToolsProtocol], connections: int) -> list[weakref.ref[Any]]:
    """Opens and closes `connections` WebSockets on a server using `protocol`; the HTTP protocol instances it
    made, watched."""
    with serving(protocol) as served:

        async def talk() -> None:
            for n in range(connections):
                await echo(served.port, f"hello {n}")

        asyncio.run(talk())
        served.drained()
    assert len(served.made) == connections
    return served.made


def test_a_websocket_connection_leaves_no_http_protocol_for_the_collector(no_collector: None) -> None:
    made = upgraded_protocols(ReleasingHttpToolsProtocol, connections=5)

    assert [ref() for ref in made] == [None] * 5


def test_uvicorns_own_protocol_is_held_by_its_cycle_after_an_upgrade(no_collector: None) -> None:
    # The check above can see the cycle: uvicorn's protocol, as it comes, is still alive here.
    made = upgraded_protocols(HttpToolsProtocol, connections=2)

    assert all(ref() is not None for ref in made)
    gc.collect()
    assert [ref() for ref in made] == [None, None]


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)
_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200)


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[bytes, int | None]:
    """Bytes a client may send on a fresh connection (a handshake, forged or torn, then anything), and how many
    bytes of the answer it reads before it goes (None: it drops the socket at once)."""
    upgrade = draw(st.booleans())
    headers = [("Host", "127.0.0.1")]
    if upgrade:
        headers += [("Upgrade", draw(st.sampled_from(["websocket", "WebSocket", "h2c", "websocket, foo", ""])))]
        headers += [("Connection", draw(st.sampled_from(["Upgrade", "keep-alive, Upgrade", "close", "upgrade"])))]
        key = draw(st.one_of(st.just("dGhlIHNhbXBsZSBub25jZQ=="), _VALUE))
        headers += [("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", draw(st.sampled_from(["13", "8", "x"])))]
    headers += draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=6))
    body = draw(st.binary(max_size=300))
    if body and draw(st.booleans()):
        headers.append(("Content-Length", str(len(body))))
    method = draw(st.sampled_from(["GET", "POST", "OPTIONS", "G\x00T"]))
    path = draw(st.sampled_from(["/", "/graphql", "/" + "a" * 3000, "*"]))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    # then whatever follows: frames (masked or not), another request pipelined, noise
    after = draw(
        st.one_of(
            st.binary(max_size=400),
            st.just(b"\x81\x85\x00\x00\x00\x00hello"),
            st.just(b"\x88\x80\x00\x00\x00\x00"),
            st.just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
    )
    return head.encode("latin-1") + body + after, draw(st.one_of(st.none(), st.integers(1, 4096)))


@pytest.fixture(scope="module")
def hostile_target() -> Iterator[Served]:
    with serving(ReleasingHttpToolsProtocol) as served:
        yield served


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=hostile_requests())
def test_whatever_a_client_sends_no_protocol_is_left_for_the_collector(
    hostile_target: Served, request: tuple[bytes, int | None]
) -> None:
    data, read = request
    already, already_ws = len(hostile_target.made), len(hostile_target.made_ws)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with socket.create_connection(("127.0.0.1", hostile_target.port), timeout=2) as client:
            client.sendall(data)
            if read is not None:
                with contextlib.suppress(OSError):  # the server closed first, or said nothing in time
                    client.recv(read)
        hostile_target.drained()
        # then every protocol (HTTP, WebSocket) the server made for it goes by reference counting alone (a timer of uvicorn's may
        # hold one until it fires: the keep-alive timeout, a second at most here)
        made = hostile_target.made[already:] + hostile_target.made_ws[already_ws:]
        deadline = time.monotonic() + KEEP_ALIVE_SECONDS + 1
        while any(ref() is not None for ref in made) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [ref() for ref in made] == [None] * len(made)
    finally:
        if was_enabled:
            gc.enable()
    # and the server still serves a well-behaved client
    asyncio.run(echo(hostile_target.port, "still here"))


# ---------------------------------------------------------------- an operation that failed on a closed socket


class ClosedSocketSchema:
    """The schema as an operation sees it when its connection went away mid-send."""

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        try:
            raise ConnectionResetError("the peer went away")
        except ConnectionResetError as exc:
            raise WebSocketDisconnected() from exc


def bare(handler_class: type[BaseGraphQLTransportWSHandler[Any, Any]]) -> BaseGraphQLTransportWSHandler[Any, Any]:
    """A graphql-transport-ws handler with just what running an operation reads."""
    handler = handler_class.__new__(handler_class)
    handler.schema = ClosedSocketSchema()  # type: ignore[assignment]
    handler.context = None
    handler.root_value = None
    handler.operations = {}
    handler.task_logger = logging.getLogger("test.quiet")
    handler.task_logger.disabled = True
    return handler


async def failed_operation(handler_class: type[BaseGraphQLTransportWSHandler[Any, Any]]) -> weakref.ref[Any]:
    """Runs one operation that fails as strawberry runs it (a task the operation holds); its handler (the
    connection's, which the operation holds), watched."""
    handler = bare(handler_class)
    operation = Operation(handler, "1", "subscription { counted(count: 1) { number } }", None, None)
    handler.operations["1"] = operation
    operation.task = asyncio.create_task(handler.run_operation(operation))
    operation.task.add_done_callback(handler._task_done)
    await asyncio.wait([operation.task])
    await asyncio.sleep(0)  # the done callback
    assert "1" not in handler.operations
    return weakref.ref(handler)


async def test_an_operation_that_failed_on_a_closed_socket_leaves_nothing_for_the_collector(
    no_collector: None,
) -> None:
    assert (await failed_operation(TransportWsHandler))() is None


async def test_strawberrys_failed_operation_is_held_by_its_task(no_collector: None) -> None:
    # The check above can see the cycle: with strawberry's handler as it comes, the connection is still held.
    handler = await failed_operation(BaseGraphQLTransportWSHandler)

    assert handler() is not None
    gc.collect()
    assert handler() is None
