"""Security headers on every HTTP response (a pure ASGI middleware, so streaming and WebSockets pass untouched).

Everything gets a strict Content-Security-Policy (`default-src 'none'`, sandboxed): JSON
needs nothing, and a user's file served from our origin (an SVG, say) can run nothing.
Only the HTML pages we ship (GraphiQL at /graphql, the demo at /demo) get a page policy
that allows their inline bootstrap scripts and the CDN GraphiQL loads from.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
PAGE_PATHS = ("/graphql", "/demo")
GRAPHIQL_CDN = "https://unpkg.com"
HSTS = "max-age=31536000; includeSubDomains"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def page_policy(host: str | None, *, production: bool) -> str:
    """CSP for our own pages: scripts from us (inline included) and the GraphiQL CDN only."""
    # Output images and videos come from presigned storage URLs on another host (S3, R2,
    # MinIO on http://localhost:9000 in development).
    media = "'self' data: blob: https:" + ("" if production else " http:")
    # 'self' covers same-host ws/wss in CSP3 browsers; naming them helps older ones.
    sockets = ""
    if host and _HOST.match(host):
        sockets = f" wss://{host}" + ("" if production else f" ws://{host}")
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'unsafe-inline' {GRAPHIQL_CDN}",
            f"style-src 'self' 'unsafe-inline' {GRAPHIQL_CDN}",
            f"font-src 'self' data: {GRAPHIQL_CDN}",
            f"img-src {media}",
            f"media-src {media}",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def is_page(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PAGE_PATHS)


class SecurityHeaders:
    """Adds the headers unless a route already set them (a route knows better)."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        host = Headers(scope=scope).get("host")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
                is_html = headers.get("content-type", "").startswith("text/html")
                policy = page_policy(host, production=self.production) if is_html and is_page(path) else API_POLICY
                headers.setdefault("Content-Security-Policy", policy)
                if self.production:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
