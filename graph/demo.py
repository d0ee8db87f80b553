"""The demo page at /demo: static files shipped inside the package, plus /demo/config.json.

It is a developer tool like GraphiQL and is served when GraphiQL is enabled (development
by default). The page is plain HTML/JS with no build step; it talks to /graphql over HTTP
and WebSocket (or Server-Sent Events) exactly like any other client, so it has no privileges of its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from infrastructure.bootstrap import Services
from infrastructure.settings import Settings

DEMO_DIR: Final = Path(__file__).parent / "static" / "demo"
#: The only files served: a fixed list, so no request path ever reaches the filesystem.
MEDIA_TYPES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: Hardening headers; the Content-Security-Policy is added per request by `page_policy`.
HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def page_policy(*, production: bool) -> str:
    """Scripts, styles and connections from this origin only (no inline code, no CDN)."""
    # Output images come from our /files route or from presigned S3 URLs on another host
    # (MinIO on http://localhost:9000 in development). 'self' covers same-origin ws/wss (CSP 3).
    media = "'self' data: blob: https:" + ("" if production else " http:")
    return (
        f"default-src 'self'; img-src {media}; media-src {media}; connect-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


router = APIRouter()


def _enabled(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.graphiql_enabled


def _not_found() -> Response:
    return Response("Not found.", status_code=404, media_type="text/plain; charset=utf-8")


@router.get("/demo", include_in_schema=False)
async def demo_root(request: Request) -> Response:
    # Relative asset URLs in index.html resolve under /demo/ only with the trailing slash.
    # The query string (`?transport=sse`) goes along; after the `?` it cannot change the path.
    query = request.url.query
    return (
        RedirectResponse("demo/" + (f"?{query}" if query else ""), status_code=307)
        if _enabled(request)
        else _not_found()
    )


@router.get("/demo/config.json", include_in_schema=False)
async def demo_config(request: Request) -> Response:
    """Where the API is, and the demo account when this server seeded one (development only)."""
    if not _enabled(request):
        return _not_found()
    settings: Settings = request.app.state.settings
    demo: dict[str, str] | None = None
    if settings.should_seed_demo:
        services: Services = request.app.state.services
        if await services.accounts.find(settings.demo_email) is not None:
            # The password is printed by `genhub serve` and shown in GraphiQL too: only a
            # development server that seeded the account itself ever reveals it.
            demo = {"email": settings.demo_email, "password": settings.demo_password}
    body = {"graphqlPath": "/graphql", "demoAccount": demo}
    return JSONResponse(body, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.api_route("/demo/", methods=["GET", "HEAD"], include_in_schema=False)
async def demo_page(request: Request) -> Response:
    return await demo_file("index.html", request)


@router.api_route("/demo/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def demo_file(name: str, request: Request) -> Response:
    media_type = MEDIA_TYPES.get(name)
    if media_type is None or not _enabled(request):
        return _not_found()
    settings: Settings = request.app.state.settings
    body = await asyncio.to_thread((DEMO_DIR / name).read_bytes)
    headers = {**HEADERS, "Content-Security-Policy": page_policy(production=settings.is_production)}
    return Response(body, media_type=media_type, headers=headers)
