"""A watch as a subscription stream on one connection: fresh loaders per event, clean endings.

Strawberry builds the context once per WebSocket connection (strawberry #1754), so the
DataLoaders on it would cache for the connection's whole life: every delivery drops them
and the fields of that event resolve through new ones (current outputs, never stale).

How a watch ends on a WebSocket (an SSE stream ends the same way, graph/sse.py: a final
``next`` with an UNAUTHENTICATED error then ``complete`` for 4401, no ``complete`` for 1012):

- a final status (``generationUpdated``): the stream ends, the client gets ``complete``;
- the access token expired, or the access gate stopped admitting it (the account was
  suspended, the session ended: `watch_access`): the connection closes with 4401
  "Unauthorized" (the client reconnects with a fresh token, or signs in again);
- the feed closed (the server is shutting down): the connection closes with 1012
  "Service restart", not ``complete``, so clients reconnect and re-subscribe instead of
  believing the stream is over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final, TypeVar

from starlette.websockets import WebSocket, WebSocketState

from domain.errors import Unauthenticated
from domain.use_cases.watching import FeedClosed
from graph.context import Context
from infrastructure.metrics import tracked_subscription

T = TypeVar("T")

UNAUTHORIZED: Final = 4401
SERVICE_RESTART: Final = 1012


def websocket_of(context: Context) -> WebSocket | None:
    request: Any = context.request
    return request if isinstance(request, WebSocket) else None


def is_open(context: Context) -> bool:
    """False once the connection was closed (by us or by the peer)."""
    if context.channel is not None:
        return context.channel.is_open()
    ws = websocket_of(context)
    return ws is None or (
        ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED
    )


async def close_connection(context: Context, code: int, reason: str) -> bool:
    """Close the context's WebSocket (or event stream) once; False when there is none to close."""
    if context.channel is not None:
        await context.channel.close(code, reason)
        return True
    ws = websocket_of(context)
    if ws is None:
        return False
    if is_open(context):
        # Starlette marks the socket closed before its first await, so a second closer
        # (another operation, the expiry timer) sees it closed and does nothing.
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(code=code, reason=reason)
    return True


#: A WebSocket close reason is at most 123 bytes of UTF-8.
MAX_CLOSE_REASON = 123


def watch_access(context: Context) -> Callable[[], None]:
    """Close the connection with 4401 once the access gate refuses its token (on any process's
    announcement, or the gate's periodic check); returns the function that stops watching."""
    principal = context.principal
    if principal is None:
        return lambda: None

    token = context.credentials.token if context.credentials.is_api_key else None

    async def check() -> None:
        if not is_open(context):
            return
        if token is not None:  # the key itself (revoked, expired), then its owner's account
            reason = await context.services.api_keys.refusal(token)
        else:
            reason = await context.services.accounts.refusal(principal)
        if reason is not None:
            text = f"Unauthorized: {reason}".encode()[:MAX_CLOSE_REASON].decode(errors="ignore")
            await close_connection(context, UNAUTHORIZED, text)

    return context.services.accounts.watch(principal, check)


def reset_loaders(context: Context) -> None:
    """Drop the cached ``Context.loaders``: the next field that needs one builds a new set."""
    context.__dict__.pop("loaders", None)


async def deliver(context: Context, updates: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """Yield each update with fresh loaders until the watch ends (see the module docstring)."""
    async with contextlib.aclosing(updates), tracked_subscription():
        try:
            async for update in updates:
                if not is_open(context):
                    return
                reset_loaders(context)
                yield update
        except Unauthenticated:
            if not await close_connection(context, UNAUTHORIZED, "Unauthorized"):
                raise
        except FeedClosed:
            await close_connection(context, SERVICE_RESTART, "Service restart")
