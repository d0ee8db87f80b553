"""WebSocket frames at /graphql, decoded and checked before strawberry's protocol handlers see them.

Strawberry decodes frames with a bare ``json.loads`` and indexes messages without checking
their shape: a frame of 5,000 ``[``, a list instead of an object or ``"payload": "x"``
raised from deep inside the handler and dropped the connection without a close frame.
Here every frame is read by `FrameReader`: binary frames, frames over
``WS_MAX_MESSAGE_BYTES`` and anything `infrastructure.json_input.loads` refuses (invalid
JSON, nesting deeper than 64, NaN, huge numbers) become a `Refusal`, and each protocol
handler (graph/websocket.py) checks the shape of a decoded message with
`transport_ws_problem` / `legacy_ws_problem` before strawberry reads it.

What a client gets (never an unhandled exception):

- graphql-transport-ws: close 4400 with the reason, as its PROTOCOL.md prescribes for any
  message of an unspecified type or format;
- legacy graphql-ws: ``connection_error`` with the reason for a frame that is not a JSON
  object or a malformed ``connection_init`` (subscriptions-transport-ws answers unparsable
  frames so), then close 4400, since such a client is broken or hostile; any other
  object of an unknown type or with malformed fields gets an ``error`` message for its id
  and the connection stays open (as subscriptions-transport-ws does).

Every close is logged at WARNING with the client address and the reason; legacy ``error``
replies only at DEBUG, since the client may repeat them at will. Close reasons are cut
to the 123 bytes a close frame carries (strawberry puts client text in some of them).

Under uvicorn a frame over the limit never reaches the app: ``genhub serve`` passes the
same limit as ``ws_max_size`` and the server closes with 1009 (Message Too Big).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.async_base_view import AsyncWebSocketAdapter

from domain.persisted_documents import names_document
from infrastructure.json_input import JsonInputError, loads

log = logging.getLogger("genhub.websocket")

#: graphql-transport-ws: "Receiving a message of a type or format which is not specified
#: in this document will result in an immediate socket closure with the event 4400".
BAD_REQUEST: Final = 4400
#: The default frame limit when the view does not name one (Settings.ws_max_message_bytes).
MAX_MESSAGE_BYTES: Final = 1024 * 1024
#: Operation ids are echoed in messages and in close reasons (at most 123 bytes).
MAX_ID_BYTES: Final = 64
_MAX_REASON_BYTES: Final = 123


@dataclass(frozen=True, slots=True)
class Refusal:
    """A frame that did not decode to a JSON object, and why (short enough for a close reason)."""

    reason: str


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry (123 bytes of UTF-8, no lone surrogates)."""
    return text.encode("utf-8", "replace")[:_MAX_REASON_BYTES].decode("utf-8", "ignore")


def utf8_size(text: str) -> int:
    """Bytes `text` takes in a frame; only counted when the character count leaves a doubt."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def read_frame(message: Mapping[str, Any], *, max_bytes: int) -> dict[str, Any] | Refusal:
    """The JSON object an ASGI ``websocket.receive`` message carries, or why there is none."""
    text = message.get("text")
    if not isinstance(text, str):
        return Refusal("Binary frames are not accepted: send JSON text")
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and utf8_size(text) > max_bytes):
        return Refusal(f"Message larger than {max_bytes} bytes")
    try:
        decoded = loads(text)
    except JsonInputError as exc:
        return Refusal(f"Message is not acceptable JSON: {exc}")
    if not isinstance(decoded, dict):
        return Refusal("Message must be a JSON object")
    return decoded


class FrameReader(ASGIWebSocketAdapter):
    """Strawberry's ASGI WebSocket adapter with frames read by `read_frame` and close reasons cut to size."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        limit = getattr(self.view, "max_message_bytes", MAX_MESSAGE_BYTES)
        max_bytes = limit if isinstance(limit, int) and limit > 0 else MAX_MESSAGE_BYTES
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                yield read_frame(message, max_bytes=max_bytes)
        except WebSocketDisconnect:
            return

    async def close(self, code: int, reason: str) -> None:
        # Strawberry puts client text in some reasons (a syntax error's message, an id).
        await super().close(code, close_reason(reason))


def _is_id(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return len(value.encode("utf-8")) <= MAX_ID_BYTES
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" is valid JSON)
        return False


def _optional(value: object, kind: type) -> bool:
    return value is None or isinstance(value, kind)


def _operation_problem(payload: object) -> str | None:
    """What is wrong with a subscribe/start payload: {query, variables?, operationName?, extensions?}."""
    if not isinstance(payload, dict):
        return "`payload` must be an object"
    query = payload.get("query")
    if not isinstance(query, str) and not (
        query is None and names_document(payload.get("extensions"), payload.get("documentId"))
    ):
        return "`payload.query` must be a string"
    if not _optional(payload.get("variables"), dict):
        return "`payload.variables` must be an object"
    if not _optional(payload.get("operationName"), str):
        return "`payload.operationName` must be a string"
    if not _optional(payload.get("extensions"), dict):
        return "`payload.extensions` must be an object"
    return None


def _type_of(message: Mapping[str, Any]) -> str | None:
    kind = message.get("type")
    return kind if isinstance(kind, str) else None


def transport_ws_problem(message: Mapping[str, Any]) -> str | None:
    """Why a graphql-transport-ws message from a client is malformed (None: it is well formed)."""
    kind = _type_of(message)
    if kind in ("connection_init", "ping", "pong"):
        return None if _optional(message.get("payload"), dict) else "`payload` must be an object"
    if kind == "subscribe":
        if not _is_id(message.get("id")):
            return f"`id` must be a non-empty string of at most {MAX_ID_BYTES} bytes"
        return _operation_problem(message.get("payload"))
    if kind == "complete":
        return None if _is_id(message.get("id")) else f"`id` must be a non-empty string of at most {MAX_ID_BYTES} bytes"
    return "Unknown message type" if kind is not None else "`type` must be a string"


def legacy_ws_problem(message: Mapping[str, Any]) -> str | None:
    """Why a legacy graphql-ws message from a client is malformed (None: it is well formed)."""
    kind = _type_of(message)
    if kind == "connection_init":
        return None if _optional(message.get("payload"), dict) else "`payload` must be an object"
    if kind == "connection_terminate":
        return None
    if kind in ("start", "stop"):
        if not _is_id(message.get("id")):
            return f"`id` must be a non-empty string of at most {MAX_ID_BYTES} bytes"
        return _operation_problem(message.get("payload")) if kind == "start" else None
    return "Unknown message type" if kind is not None else "`type` must be a string"


def legacy_error(message: Mapping[str, Any], problem: str, *, client: str) -> Any:
    """The legacy ``error`` reply to a malformed message, naming its id when that is a usable one.

    Logged at DEBUG only: the connection stays open, so a client could repeat it at will.
    """
    log.debug("legacy graphql-ws message from %s refused: %s", client, problem)
    value = message.get("id")
    return {"type": "error", "id": value if _is_id(value) else None, "payload": {"message": problem}}


async def refuse(websocket: AsyncWebSocketAdapter, reason: str, *, client: str) -> None:
    """Close with 4400 and the reason, logging it; nothing happens when the socket is already closed."""
    log.warning("WebSocket message from %s refused: %s", client, reason)
    with contextlib.suppress(RuntimeError, OSError):  # closed meanwhile (by the peer or an expiry timer)
        await websocket.close(BAD_REQUEST, reason)
