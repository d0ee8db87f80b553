"""The protocols `genhub serve` gives uvicorn: its httptools and websockets ones, minus reference cycles that kept
closed connections for the garbage collector.

- uvicorn's `HttpToolsProtocol` and its `HttpRequestParser` refer to each other (the parser calls the
  protocol's bound methods). uvicorn breaks that cycle in `connection_lost`, but a connection upgraded to a
  WebSocket hands its transport to a WebSocket protocol and never gets there: the HTTP protocol then lived in
  a cycle holding the transport, and through it the WebSocket protocol, the ASGI scope and the application's
  connection state, until a full garbage collection found them after the socket closed. Here the parser is
  dropped as soon as the upgrade is handed over. Likewise a request whose application never ran (pipelined
  behind one in flight when the client went) kept its callback to the protocol: dropped when the connection is.
- A handshake or a frame the websockets library refuses (a forged method, key or version; a malformed frame)
  is kept on its connection object as an exception, whose traceback holds the frames that handled it, each
  holding the protocol that holds the connection object (and, through the calls that led there, the HTTP
  protocol of the upgrade). Once uvicorn has answered it, the traceback goes.

With many connections opened and closed (hostile ones among them), each waited for a whole-heap collection
otherwise (docs/observability.md, "Garbage collection").
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request


class ReleasingHttpToolsProtocol(HttpToolsProtocol):
    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport now feeds the WebSocket protocol; nothing calls this one or its parser again.
        self.parser = None  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # A request whose application never ran (pipelined behind one in flight when the client went) keeps the
        # callback to this protocol that a finished one drops; nothing sends on a lost connection any more.
        for cycle, _app in self.pipeline:
            cycle.on_response = _nothing
        self.pipeline.clear()
        if self.cycle is not None:
            self.cycle.on_response = _nothing


def _nothing() -> None:
    return None


class ErrorReleasingWebSocketsProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)  # a handshake refused here is answered (403, 405, 426, ...) and closed
        self._forget_refusals()

    def handle_handshake_exception(self) -> None:
        super().handle_handshake_exception()
        self._forget_refusals()

    def handle_parser_exception(self) -> None:
        super().handle_parser_exception()
        self._forget_refusals()

    def _forget_refusals(self) -> None:
        _drop_tracebacks(self.conn.handshake_exc)
        _drop_tracebacks(self.conn.parser_exc)


def _drop_tracebacks(error: BaseException | None) -> None:
    """`error` and the exceptions chained to it keep their messages, not their tracebacks (answered, nothing
    raises them again)."""
    pending = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [current.__cause__, current.__context__]
