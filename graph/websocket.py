"""GraphQL subscriptions over WebSocket at /graphql: graphql-transport-ws and legacy graphql-ws.

Only the WebSocket route is mounted here; GET/POST /graphql stay with ``graph.http``.

Authentication happens once per connection, at ``connection_init``: the token comes from
the payload (``{"Authorization": "Bearer <jwt>"}``, ``{"token": "<jwt>"}`` or
``{"headers": {"Authorization": ...}}``) or else from the upgrade request's
``Authorization`` header; an API key (``ghk_...``) is accepted wherever a JWT is, and the
connection's operations are held to its scopes. Revoking the key closes the connection
with 4401 on every replica. A missing, invalid or expired token, or one the access gate
refuses (account gone or suspended, session ended), closes the connection with 4401
"Unauthorized" (legacy graphql-ws: a ``connection_error`` first). The gate is asked again
when each operation starts, and an open connection is closed with 4401 the moment its
session ends on any replica (``graph.subscriptions.session.watch_access``). When the token
expires during the connection it is closed with 4401 at that moment, and no event is
delivered after expiry in any case (``domain.use_cases.watching`` checks before each one).

Hostile input: every frame is read by ``graph.ws_frames`` first. Binary frames, JSON
nested deeper than 64 levels, anything that is no JSON object and messages with malformed
fields close the connection with 4400 (legacy graphql-ws: ``connection_error`` first, or
an ``error`` reply for a malformed operation). Messages over ``WS_MAX_MESSAGE_BYTES`` are
closed with 1009 by uvicorn (4400 by the app under another server). At most 50 operations
run per connection; more get "Subscription limit reached".

Keep-alive: graphql-transport-ws ``ping`` messages every ``WS_KEEPALIVE_SECONDS`` (clients
answer ``pong``), legacy ``ka`` messages, and uvicorn's WebSocket-level pings.

Shutdown: on SIGTERM uvicorn closes every WebSocket with 1012 (Service Restart) and the
handlers end their operations, which releases each Redis subscription; clients reconnect
elsewhere and ``generationUpdated`` starts with the current state, so nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final, cast

import strawberry
from fastapi import WebSocket
from fastapi.routing import APIWebSocketRoute
from graphql import GraphQLFormattedError
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, ErrorMessage, Message
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage as LegacyInitMessage
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyErrorMessage
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage

from domain.errors import Unauthenticated
from graph.client_address import client_address
from graph.context import Context, Credentials
from graph.cors import is_local_development_origin
from graph.http import bearer_token
from graph.persisted_documents import fill_payload
from graph.schema import GenhubSchema
from graph.subscriptions.session import UNAUTHORIZED, close_connection, is_open, watch_access
from graph.ws_frames import FrameReader, Refusal, legacy_error, legacy_ws_problem, refuse, transport_ws_problem
from infrastructure.bootstrap import Services
from infrastructure.settings import Settings

#: A client that has not sent connection_init by then is closed with 4408 (legacy graphql-ws too).
CONNECTION_INIT_TIMEOUT: Final = timedelta(seconds=10)
INIT_TIMEOUT_CODE: Final = 4408
#: In-flight operations per connection; more get a "Subscription limit reached" error.
MAX_SUBSCRIPTIONS_PER_CONNECTION: Final = 50


def token_from_payload(payload: Mapping[str, Any]) -> str | None:
    """The bearer token a connection_init payload carries, if any."""
    headers = payload.get("headers")
    sources = [payload, headers] if isinstance(headers, Mapping) else [payload]
    for source in sources:
        for key in ("Authorization", "authorization"):
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return bearer_token({"authorization": value})
    token = payload.get("token")
    return token.strip() if isinstance(token, str) and token.strip() else None


async def authenticate(context: Context, payload: Mapping[str, Any]) -> bool:
    """Adopt the payload's token (else keep the upgrade header's); True when it proves a viewer
    the access gate admits."""
    token = token_from_payload(payload)
    if token is not None:
        context.adopt(Credentials(token))
    try:
        await context.authenticate()  # an API key: verified here (JWTs need no await)
        if context.principal is not None:
            await context.confirm_account()
        return context.viewer is not None
    except Unauthenticated:
        return False


async def close_at_expiry(context: Context) -> None:
    """Close the connection with 4401 the moment its access token expires."""
    expires_at = context.token_expires_at
    if expires_at is None:
        return
    delay = context.services.watching.seconds_left(expires_at)
    await asyncio.sleep(max(0.0, delay))
    await close_connection(context, UNAUTHORIZED, "Unauthorized: the access token has expired")


def _nothing() -> None:
    return None


class _Timers:
    """Background tasks of one connection, cancelled when it ends."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class TransportWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with 4401 on a bad token, expiry close and server pings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timers = _Timers()
        self.unwatch: Callable[[], None] = _nothing

    async def handle_message(self, message: Message | Refusal) -> None:
        """Refuse (4400) what did not decode or is malformed, before strawberry indexes it (graph/ws_frames.py)."""
        problem = message.reason if isinstance(message, Refusal) else transport_ws_problem(message)
        if isinstance(message, Refusal) or problem is not None:
            await refuse(self.websocket, problem or "", client=self.context.client_ip)
            return
        if message.get("type") == "subscribe":
            if self.connection_acknowledged:  # before, strawberry closes with 4401: nothing is looked up
                error = await self.named_document(message.get("payload"))
                if error is not None:  # an unknown or untrusted document: this operation's error, the socket stays
                    await self.send_message(ErrorMessage(id=str(message.get("id")), type="error", payload=[error]))
                    return
            self.context.reconfirm()  # each operation asks the access gate afresh
        await super().handle_message(message)

    async def named_document(self, payload: object) -> GraphQLFormattedError | None:
        """The payload's text put in place when it names a document by id (graph/persisted_documents.py)."""
        schema = cast(GenhubSchema, self.schema)
        return await fill_payload(self.context.services, schema, payload, self.context.client_ip)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        first = not self.connection_init_received and not self.connection_timed_out
        if first and isinstance(payload, dict) and not await authenticate(self.context, payload):
            self.connection_init_received = True
            if self.connection_init_timeout_task:
                self.connection_init_timeout_task.cancel()
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
            return
        await super().handle_connection_init(message)
        if first and self.connection_acknowledged:
            self.timers.start(close_at_expiry(self.context))
            self.timers.start(self._ping())
            self.unwatch = watch_access(self.context)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # strawberry logs an operation's error, sends `complete` (where it still can) and forgets the operation,
        # then raises the error again for the task to hold. Held there, the error's traceback holds the operation's
        # frames, which hold the operation, which holds its task: a cycle that kept the whole connection (an
        # operation whose send failed when the peer went away) until a full garbage collection. Nothing reads the
        # task's error, so it ends here.
        with contextlib.suppress(Exception):
            await super().run_operation(operation)

    async def _ping(self) -> None:
        interval = float(getattr(self.view, "keep_alive_interval", None) or 15.0)
        while True:
            await asyncio.sleep(interval)
            await self.send_message({"type": "ping"})

    async def send_message(self, message: Message) -> None:
        if is_open(self.context):  # nothing is sent after we (or the peer) closed
            await super().send_message(message)

    async def shutdown(self) -> None:
        self.unwatch()
        await self.timers.cancel()
        await super().shutdown()


class LegacyWsHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws (subscriptions-transport-ws) with the same authentication rules."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timers = _Timers()
        self.timers.start(self._init_deadline())
        self.unwatch: Callable[[], None] = _nothing

    async def _init_deadline(self) -> None:
        """Strawberry's legacy handler has no connection_init timeout: an idle socket would stay forever."""
        await asyncio.sleep(CONNECTION_INIT_TIMEOUT.total_seconds())
        if not self.connection_acknowledged:
            await close_connection(self.context, INIT_TIMEOUT_CODE, "Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage | Refusal) -> None:
        """A frame that is no JSON object: connection_error, then 4400; a malformed message: an error reply."""
        problem = message.reason if isinstance(message, Refusal) else legacy_ws_problem(message)
        if isinstance(message, Refusal) or (problem is not None and message.get("type") == "connection_init"):
            await self.send_message({"type": "connection_error", "payload": {"message": problem}})
            await refuse(self.websocket, problem or "", client=self.context.client_ip)
            return
        if problem is not None:
            await self.send_message(legacy_error(message, problem, client=self.context.client_ip))
            return
        if message.get("type") == "start":
            if self.connection_acknowledged:
                error = await self.named_document(message.get("payload"))
                if error is not None:
                    await self.send_message(LegacyErrorMessage(type="error", id=str(message.get("id")), payload=error))
                    return
            self.context.reconfirm()  # each operation asks the access gate afresh
        await super().handle_message(message)

    async def named_document(self, payload: object) -> GraphQLFormattedError | None:
        """The payload's text put in place when it names a document by id (graph/persisted_documents.py)."""
        schema = cast(GenhubSchema, self.schema)
        return await fill_payload(self.context.services, schema, payload, self.context.client_ip)

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        if self.connection_acknowledged:
            return  # one identity per connection: a second init cannot swap the token
        payload = message.get("payload") or {}
        if isinstance(payload, dict) and not await authenticate(self.context, payload):
            await self.send_message({"type": "connection_error", "payload": {"message": "Unauthorized"}})
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.timers.start(close_at_expiry(self.context))
            self.unwatch = watch_access(self.context)

    async def send_message(self, message: OperationMessage) -> None:
        if is_open(self.context):
            await super().send_message(message)

    async def cleanup(self) -> None:
        self.unwatch()
        await self.timers.cancel()
        await super().cleanup()


class SubscriptionRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router reduced to its WebSocket route at /graphql."""

    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler
    websocket_adapter_class = FrameReader

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        #: Read by FrameReader: larger text frames are refused with 4400 (uvicorn's ws_max_size says 1009 first).
        self.max_message_bytes = settings.ws_max_message_bytes
        self.settings = settings
        super().__init__(
            schema,
            path="/graphql",
            graphql_ide=None,
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=settings.ws_keepalive_seconds,
            context_getter=self.connection_context,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            allowed_origins=settings.cors_origins,
            include_in_schema=False,
        )
        # GET/POST /graphql belong to graph.http: keep only the WebSocket route.
        self.routes[:] = [route for route in self.routes if isinstance(route, APIWebSocketRoute)]

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """`CORS_ORIGINS`, and in development a page on localhost (graph/cors.py), as for HTTP."""
        return super().is_websocket_origin_allowed(request, origin) or is_local_development_origin(
            origin, self.settings
        )

    async def serve(self, websocket: WebSocket) -> None:
        """A connection at /graphql, handed over before FastAPI's routing (graph/http_endpoint.py)."""
        context = await self.connection_context(websocket)
        context.request = websocket
        await self.run(request=websocket, context=context, root_value=None)

    async def connection_context(self, connection: HTTPConnection) -> Context:
        """Built once per connection; the upgrade's Authorization header is the fallback token."""
        services: Services = connection.app.state.services
        return Context(
            services=services,
            credentials=Credentials(bearer_token(connection.headers)),
            client_ip=client_address(connection, services.settings.trusted_proxy_hops),
        )


def build_ws_router(schema: strawberry.Schema, settings: Settings) -> SubscriptionRouter:
    return SubscriptionRouter(schema, settings)
