"""GraphQL over Server-Sent Events at /graphql: the graphql-sse protocol's "distinct connections" mode.

A POST (JSON body) or GET (query string) to /graphql with `Accept: text/event-stream` runs
one operation and streams its results: `event: next` with each ExecutionResult, then
`event: complete`. A query or mutation is one `next` then `complete`; a subscription runs
through the same execution path as over WebSocket (`GenhubSchema.stream`, graph/streaming.py,
and graph/subscriptions/session.py), so it replays the current state, then streams, and
`generationUpdated` completes once the generation is settled. Comments (`:`) keep the
connection alive every `SSE_KEEPALIVE_SECONDS`.

Refused before any stream opens, with a JSON body (`errors[0].extensions.code`):
- a body or query string that is no GraphQL request, a document that does not parse, no such
  operation: 400; a mutation over GET: 405; a body over MAX_BODY_BYTES: 413;
- a subscription without a token, any operation with an invalid, expired or refused token:
  401 with `WWW-Authenticate: Bearer`;
- a subscription beyond `SSE_MAX_STREAMS_PER_USER` open streams of that user on this
  process: 429 with `Retry-After`.
Validation errors of a document that parses (unknown fields, depth, cost) are reported
inside an accepted stream as the protocol requires: one `next` with `errors`, then `complete`.

How a stream ends: a finished operation sends `complete`; a client that disconnects ends
its subscription at once (its Redis subscription is released on the spot), while a query or
mutation runs to its end as over a plain POST (a mutation cut mid-resolver would leave its
effects to chance) and its result is dropped; access revoked or
the token expired (the WebSocket's 4401) sends a `next` with an UNAUTHENTICATED error, then
`complete`; the server shutting down (1012) ends the response without `complete`, so the
client reconnects; a client that stops reading is dropped once one write has waited
`SSE_WRITE_TIMEOUT_SECONDS` (what piles up meanwhile is the bounded, drop-oldest queue of
its subscription, infrastructure/pubsub/bounded.py), without slowing anybody else.

The "single connection" mode (PUT reservation, operations by separate POSTs, DELETE to stop)
is not offered: each POST may reach another replica than the one holding the stream, so it
needs sticky routing or a cross-replica operation channel; HTTP/2 lifts the browser's six
connections limit that mode works around. PUT and DELETE get 405 as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncGenerator
from typing import Any, Final

from graphql import OperationType
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from domain.errors import RateLimited, Unauthenticated
from graph import persisted_documents as documents
from graph.context import Context
from graph.http import (
    UNPARSED,
    Answer,
    GraphQLHttp,
    encode,
    named_document,
    no_such_operation,
    operation_type,
    problem,
)
from graph.http_bodies import read_body
from graph.http_protocol import JSON_TYPE, GraphQLParams, HttpProblem, params_from_query_string, parse_json_body
from graph.subscriptions.session import SERVICE_RESTART, UNAUTHORIZED, watch_access
from graph.websocket import close_at_expiry
from infrastructure.bootstrap import Services

log = logging.getLogger("genhub.sse")

STREAM_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: pass each event on at once
)
KEEPALIVE: Final = b":\n\n"
COMPLETE: Final = b"event: complete\ndata:\n\n"
UNAUTHENTICATED: Final = Unauthenticated.code
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def event(name: bytes, payload: Any) -> bytes:
    """One SSE message; JSON holds no raw line break except whitespace, which a `data:` line split keeps."""
    body = encode(payload)
    lines = LINE_BREAK.split(body) if b"\n" in body or b"\r" in body else [body]
    return b"event: " + name + b"\n" + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def result_payload(result: ExecutionResult) -> dict[str, Any]:
    """An ExecutionResult as graphql-sse's `next` carries it (no `data` when nothing ran)."""
    payload: dict[str, Any] = {} if isinstance(result, PreExecutionError) else {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    return payload


class StreamBroken(Exception):
    """The client is gone, or stopped reading for longer than the write timeout."""


class StreamCounts:
    """Open subscription streams per user in this process (the per-user cap)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[uuid.UUID] = Counter()

    def acquire(self, user_id: uuid.UUID) -> bool:
        if self._open[user_id] >= self.limit:
            return False
        self._open[user_id] += 1
        return True

    def release(self, user_id: uuid.UUID) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]

    def total(self) -> int:
        return sum(self._open.values())


class EventStream:
    """One open response: serialized writes with a deadline, and the ending a watch asked for.

    It is the context's `channel` (graph/context.py), so the subscription session and the access
    gate's watcher end it as they close a WebSocket.
    """

    def __init__(self, send: Send, *, write_timeout: float, request_id: str) -> None:
        self._send = send
        self._write_timeout = write_timeout
        self._lock = asyncio.Lock()
        self._request_id = request_id
        self.broken = False
        #: (code, reason) once `close` was called: the WebSocket close code the ending stands for.
        self.ending: tuple[int, str] | None = None
        self.closing = asyncio.Event()

    def is_open(self) -> bool:
        return not self.broken and self.ending is None

    async def close(self, code: int, reason: str) -> None:
        """Ask the stream to end (it never waits: the caller may be the operation being ended)."""
        if self.ending is None:
            self.ending = (code, reason)
            self.closing.set()

    async def start(self) -> None:
        await self._send({"type": "http.response.start", "status": 200, "headers": list(STREAM_HEADERS)})
        await self.write(KEEPALIVE)  # some browsers show nothing before the first bytes of the body

    async def write(self, data: bytes, *, more: bool = True) -> None:
        async with self._lock:
            if self.broken:
                raise StreamBroken
            try:
                # (asyncio.timeout, not wait_for: no task per write)
                async with asyncio.timeout(self._write_timeout):
                    await self._send({"type": "http.response.body", "body": data, "more_body": more})
            except (TimeoutError, OSError, ClientDisconnect) as exc:
                self.broken = True
                raise StreamBroken from exc

    async def run(
        self,
        results: AsyncGenerator[ExecutionResult, None],
        receive: Receive,
        keepalive: float,
        *,
        to_completion: bool = False,
    ) -> None:
        """Stream `results` until they end, the client leaves, a write stalls or `close` is called.

        `to_completion` (a query or mutation): whichever of those comes first, the operation still
        runs to its end, as it does over a plain POST; only what it answers is dropped (`_produce`
        writes nothing once the stream is no longer open). A subscription is cancelled at once.
        """
        producer = asyncio.create_task(self._produce(results))
        others = [
            asyncio.create_task(self._watch_disconnect(receive)),
            asyncio.create_task(self._keepalive(keepalive)),
            asyncio.create_task(self.closing.wait()),
        ]
        try:
            await asyncio.wait([producer, *others], return_when=asyncio.FIRST_COMPLETED)
            if to_completion and not producer.done():
                for task in others:
                    task.cancel()
                # (asyncio.wait, not await: the producer's own failure is read below, as before;
                # this task being cancelled, on shutdown, still cancels the producer in `finally`)
                await asyncio.wait([producer])
        finally:
            for task in (producer, *others):
                task.cancel()
            await asyncio.gather(producer, *others, return_exceptions=True)
        if self.broken:
            log.info("event stream dropped: the client left or stopped reading", extra={"request_id": self._request_id})
            return
        with contextlib.suppress(StreamBroken):
            await self._finish(completed=producer.done() and not producer.cancelled() and not producer.exception())

    async def _finish(self, *, completed: bool) -> None:
        if self.ending is not None:
            code, reason = self.ending
            if code == UNAUTHORIZED:
                error = {"message": reason, "extensions": {"code": UNAUTHENTICATED, "requestId": self._request_id}}
                await self.write(event(b"next", {"errors": [error]}) + COMPLETE, more=False)
                return
            if code == SERVICE_RESTART or not completed:  # no `complete`: the client reconnects
                await self.write(b"", more=False)
                return
        await self.write(COMPLETE if completed else b"", more=False)

    async def _produce(self, results: AsyncGenerator[ExecutionResult, None]) -> None:
        async with contextlib.aclosing(results):
            async for result in results:
                if not self.is_open():
                    return
                await self.write(event(b"next", result_payload(result)))

    async def _watch_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.broken = True

    async def _keepalive(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.write(KEEPALIVE)


class GraphQLSse:
    """The SSE transport of one app: parses and authorizes the request, then runs its EventStream."""

    def __init__(self, http: GraphQLHttp) -> None:
        self.http = http
        self.schema = http.schema
        self.settings = http.settings
        self.streams = StreamCounts(self.settings.sse_max_streams_per_user)

    @staticmethod
    def services(request: Request) -> Services:
        services: Services = request.app.state.services
        return services

    async def params(self, request: Request) -> GraphQLParams:
        if request.method == "GET":
            return params_from_query_string(dict(request.query_params))
        parsed = parse_json_body(await read_body(request, self.settings.max_body_bytes), max_batch=1)
        if isinstance(parsed, list):
            raise HttpProblem(400, "Send one operation per event stream (no batches).")
        return parsed

    def operation(self, params: GraphQLParams, *, via_get: bool) -> OperationType:
        if not params.query.strip():
            raise HttpProblem(400, "No GraphQL query found in the request.")
        op_type = operation_type(self.schema, params)
        if op_type == UNPARSED:
            errors = self.schema.plans.get(params.query).errors
            raise HttpProblem(400, errors[0].message if errors else "The document does not parse.")
        if not isinstance(op_type, OperationType):
            raise HttpProblem(400, no_such_operation(params.operation_name).message)
        if via_get and op_type is OperationType.MUTATION:
            raise HttpProblem(
                405, "Only queries and subscriptions may be sent with GET; use POST.", headers={"Allow": "POST"}
            )
        return op_type

    @staticmethod
    async def authenticate(context: Context, op_type: OperationType) -> None:
        """401 for a bad token or API key (any operation) or none (a subscription); the access gate is asked too."""
        challenge = {"WWW-Authenticate": "Bearer"}
        try:
            await context.confirm_account()
            viewer = context.viewer
        except Unauthenticated as exc:
            raise HttpProblem(401, f"Unauthorized: {exc.message}", headers=challenge, code=UNAUTHENTICATED) from exc
        except RateLimited as exc:  # unknown API keys tried too often from this address
            retry = {"Retry-After": str(exc.retry_after_seconds)}
            raise HttpProblem(429, exc.message, headers=retry, code=RateLimited.code) from exc
        if viewer is None and op_type is OperationType.SUBSCRIPTION:
            message = "Sign in: send `Authorization: Bearer <accessToken>`."
            raise HttpProblem(401, message, headers=challenge, code=UNAUTHENTICATED)

    async def __call__(self, request: Request, send: Send) -> None:
        try:
            params, document = await named_document(self.services(request), self.schema, await self.params(request))
            op_type = self.operation(params, via_get=request.method == "GET")
            context = self.http.context(request, params)
            await self.authenticate(context, op_type)
            if document is not None and document.register:  # an automatic persisted query sent with its text
                await documents.register(context.services, self.schema, document, context.client_ip)
        except ClientDisconnect:
            return
        except HttpProblem as exc:
            await send_answer(send, problem(exc, JSON_TYPE, request))
            return
        viewer = context.viewer
        counted = op_type is OperationType.SUBSCRIPTION and viewer is not None
        if counted and viewer is not None and not self.streams.acquire(viewer.user_id):
            limit = self.settings.sse_max_streams_per_user
            message = f"At most {limit} open event streams per user."
            refused = HttpProblem(429, message, headers={"Retry-After": "5"}, code=RateLimited.code)
            await send_answer(send, problem(refused, JSON_TYPE, request))
            return
        try:
            await self.stream(request, send, params, context, subscription=op_type is OperationType.SUBSCRIPTION)
        finally:
            if counted and viewer is not None:
                self.streams.release(viewer.user_id)

    async def stream(
        self, request: Request, send: Send, params: GraphQLParams, context: Context, *, subscription: bool
    ) -> None:
        """A subscription is watched: access revoked on any replica, or the token expiring, ends the stream.
        A query or mutation runs to its end even when the client left before its stream opened."""
        stream = EventStream(send, write_timeout=self.settings.sse_write_timeout_seconds, request_id=context.request_id)
        context.channel = stream
        unwatch = watch_access(context) if subscription else _nothing
        expiry = asyncio.create_task(close_at_expiry(context) if subscription else asyncio.sleep(0))
        try:
            with contextlib.suppress(StreamBroken):
                try:
                    await stream.start()
                except StreamBroken:
                    if subscription:
                        raise
                results = await self.schema.stream(
                    params.query,
                    variable_values=params.variables,
                    context_value=context,
                    operation_name=params.operation_name,
                    operation_extensions=params.extensions,
                )
                try:
                    await stream.run(
                        results, request.receive, self.settings.sse_keepalive_seconds, to_completion=not subscription
                    )
                except asyncio.CancelledError:
                    # uvicorn's graceful shutdown period is over and it cancels what still runs: end the
                    # body without `complete` (the client reconnects elsewhere) and let the task end; an
                    # exception out of here would be logged as an error with a traceback.
                    await stream.write(b"", more=False)
        finally:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
            unwatch()


class EventStreamResponse(Response):
    """The route's answer: the SSE transport runs on the raw ASGI channel (GET /graphql)."""

    def __init__(self, sse: GraphQLSse, request: Request) -> None:
        super().__init__()
        self.sse = sse
        self.request = request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.sse(self.request, send)


def _nothing() -> None:
    return None


async def send_answer(send: Send, answer: Answer) -> None:
    """A complete JSON answer (a refusal before any stream opened)."""
    body = encode(answer.payload)
    headers = [
        (b"content-type", f"{answer.media}; charset=utf-8".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (answer.headers or {}).items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
