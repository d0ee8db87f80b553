"""Security headers on every HTTP response (a pure ASGI middleware, so streaming and WebSockets pass untouched).

Everything gets a strict Content-Security-Policy (`default-src 'none'`, sandboxed): JSON
needs nothing, and a user's file served from our origin (an SVG, say) can run nothing.
Only the HTML pages we ship (GraphiQL at /graphql, the demo at /demo) get a page policy:
scripts and styles from our own origin only (GraphiQL's assets are vendored, graph/ide.py).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
PAGE_PATHS = ("/graphql", "/demo")
HSTS = "max-age=31536000; includeSubDomains"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def page_policy(host: str | None, *, production: bool) -> str:
    """CSP for our own pages: scripts and styles from this origin only, no inline script."""
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
            "script-src 'self'",
            "style-src 'self'",
            # GraphiQL's dialogs (react-remove-scroll) add a <style> element with a computed
            # scrollbar width, so neither a hash nor our origin can cover it; style attributes
            # and every script stay limited to our origin.
            "style-src-elem 'self' 'unsafe-inline'",
            # GraphiQL's stylesheet embeds its fonts as data: URLs
            "font-src 'self' data:",
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


_COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)


def _raw(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs)


class SecurityHeaders:
    """Adds the headers unless a route already set them (a route knows better).

    The header lines are encoded once; each response only gets the missing ones appended
    (this runs on every response, so no per-request parsing of the header list).
    """

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        self.production = production
        common = _COMMON + ((("Strict-Transport-Security", HSTS),) if production else ())
        self._api = _raw((*common, ("Content-Security-Policy", API_POLICY)))
        self._page = _raw(common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                present = {name.lower() for name, _ in headers}
                extra = self._api
                if is_page(scope.get("path", "")) and _is_html(headers):
                    host = Headers(scope=scope).get("host")
                    policy = page_policy(host, production=self.production)
                    extra = (*self._page, (b"content-security-policy", policy.encode("latin-1")))
                headers.extend(pair for pair in extra if pair[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)
