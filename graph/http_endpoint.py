"""POST /graphql with a JSON body and the WebSocket at /graphql, served as plain ASGI before FastAPI's routing layers.

Almost every GraphQL request is a JSON POST to one path. Through FastAPI it also passes
the exception and exit-stack middlewares, the router's match over every route, the
route's request/response wrappers and dependency solving: a measurable share of a
request's CPU in a profile (docs/benchmarks.md), and nothing it needs. This middleware, the innermost of ours (request id, security
headers, CORS and metrics still wrap it), answers such requests with the same
`GraphQLHttp.post_json` the route uses (or, for `Accept: text/event-stream`, streams
with graph/sse.py); everything else (GET, multipart uploads,
other paths and methods) goes on to FastAPI. An unexpected exception propagates to
Starlette's ServerErrorMiddleware exactly as it would from the route.

The WebSocket at /graphql goes straight to the subscription view (graph/websocket.py) too:
a connection lives for hours, and what FastAPI's layers made for it (their exit stacks, the
route's scope copy, the solved dependencies) lived as long, several KiB on each of thousands
of connections (bench/fanout.py --census).
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from graph.http import JSON_BODY_TYPES, GraphQLHttp, encode, headers_of
from graph.http_protocol import media_type, wants_event_stream
from graph.sse import GraphQLSse

PATH = "/graphql"


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


def _content_type(scope: Scope) -> str:
    return media_type(_header(scope, b"content-type"))


def route_path(scope: Scope) -> str:
    """The path the router matches: `path` without the ASGI `root_path` prefix (as Starlette's routing does)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


class WebSocketView(Protocol):
    async def serve(self, websocket: WebSocket) -> None: ...


class GraphQLEndpoint:
    def __init__(
        self,
        app: ASGIApp,
        *,
        handler: GraphQLHttp,
        sse: GraphQLSse | None = None,
        websocket: WebSocketView | None = None,
    ) -> None:
        self.app = app
        self.handler = handler
        self.sse = sse
        self.websocket = websocket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.websocket is not None and route_path(scope) == PATH:
            await self.websocket.serve(WebSocket(scope, receive, send))
            return
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or route_path(scope) != PATH
            or _content_type(scope) not in JSON_BODY_TYPES
        ):
            await self.app(scope, receive, send)
            return
        if self.sse is not None and wants_event_stream(_header(scope, b"accept")):  # GraphQL over SSE (graph/sse.py)
            await self.sse(Request(scope, receive), send)
            return
        answer = await self.handler.post_json(Request(scope, receive))
        body = encode(answer.payload)
        headers = [
            (b"content-type", f"{answer.media}; charset=utf-8".encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers_of(answer).items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
