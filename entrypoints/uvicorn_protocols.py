"""The HTTP protocol `genhub serve` gives uvicorn: its httptools protocol, minus a reference cycle per WebSocket.

uvicorn's `HttpToolsProtocol` and its `HttpRequestParser` refer to each other (the parser calls the
protocol's bound methods). uvicorn breaks that cycle in `connection_lost`, but a connection upgraded to a
WebSocket hands its transport to a WebSocket protocol and never gets there: the HTTP protocol then lived in
a cycle holding the transport, and through it the WebSocket protocol, the ASGI scope and the application's
connection state, until a full garbage collection found them after the socket closed. With many
connections opened and closed, each waited for such a collection (docs/observability.md, "Garbage
collection"). Here the parser is dropped as soon as the upgrade is handed over: the HTTP protocol goes at
once, and the WebSocket's objects go when its socket closes.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class UpgradeReleasingHttpToolsProtocol(HttpToolsProtocol):
    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport now feeds the WebSocket protocol; nothing calls this one or its parser again.
        self.parser = None  # type: ignore[assignment]
