"""GraphiQL at /graphql: the page, its example operation, and its assets served by genhub itself.

The assets (React, GraphiQL, the explorer plugin) are vendored at pinned versions under
graph/static/graphiql/vendor (scripts/vendor_graphiql.py), so the page works without the
internet and its Content-Security-Policy (graph/security.py) allows our own origin only:
no CDN, no inline script (the bootstrap is graph/static/graphiql/genhub-graphiql.js and the
example operation travels in a JSON data block, which is not executed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from infrastructure.settings import Settings

STATIC_DIR: Final = Path(__file__).parent / "static" / "graphiql"
VENDOR_DIR: Final = STATIC_DIR / "vendor"
#: Vendored file names carry their package's version: a new version is a new URL, so a browser
#: may keep each one for a year without asking again.
IMMUTABLE: Final = "public, max-age=31536000, immutable"
#: Our own files keep their names across releases: the browser revalidates them (ETag).
REVALIDATE: Final = "no-cache"
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
CONFIG_PLACEHOLDER: Final = "{{CONFIG}}"

EXAMPLE_OPERATION = """# Welcome to genhub's GraphQL API.
#
# 1. Sign in: run `SignIn` below (or use the token `genhub serve` printed).
# 2. Open the "Headers" tab at the bottom and paste:
#      {"Authorization": "Bearer <accessToken>"}
#    It authenticates HTTP requests and the subscription WebSocket alike.
# 3. Run `Catalogue`, then put a model id in the "Variables" tab:
#      {"modelId": "<id>"}
# 4. Run `Start`, add its generation id to the variables ({"modelId": "...", "id": "<id>"})
#    and run `Watch` (a subscription over WebSocket): status and progress arrive live.
#
# Press the play button and pick an operation. More: docs/clients.md (client
# examples), docs/schema.md (every operation), and the live demo page at /demo.

mutation SignIn {
  login(input: {email: "%(email)s", password: "%(password)s"}) {
    __typename
    ... on AuthPayload { accessToken expiresIn user { id email } }
    ... on Error { code message }
  }
}

query Catalogue {
  me { email role }
  credits { balance reserved available }
  models { id slug name kind costCredits }
}

mutation Start($modelId: ID!) {
  generate(input: {modelId: $modelId, prompt: "a lighthouse at dawn"}) {
    __typename
    ... on GenerateSuccess { generation { id status } }
    ... on Error { code message }
  }
}

subscription Watch($id: ID!) {
  generationUpdated(id: $id) {
    previousStatus
    at
    generation { status progress outputs { url } error { code message } }
  }
}
"""


@dataclass(frozen=True, slots=True)
class Asset:
    path: Path
    media_type: str
    cache_control: str


def _assets() -> dict[str, Asset]:
    """URL path under /graphiql/ -> file: a fixed table, so no request path reaches the filesystem."""
    table = {
        name: Asset(STATIC_DIR / name, MEDIA_TYPES[Path(name).suffix], REVALIDATE)
        for name in ("genhub-graphiql.js", "genhub-graphiql.css")
    }
    manifest = json.loads((VENDOR_DIR / "manifest.json").read_text())
    for name in manifest["files"]:
        table[f"vendor/{name}"] = Asset(VENDOR_DIR / name, MEDIA_TYPES[Path(name).suffix], IMMUTABLE)
    return table


ASSETS: Final = _assets()
_TEMPLATE: Final = (STATIC_DIR / "index.html").read_text()


def example_operation(settings: Settings) -> str:
    if settings.should_seed_demo:
        return EXAMPLE_OPERATION % {"email": settings.demo_email, "password": settings.demo_password}
    return EXAMPLE_OPERATION % {"email": "you@example.com", "password": "your password"}


def json_for_html(value: object) -> str:
    """JSON that cannot end its <script> data block or open a comment inside it."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_page(settings: Settings) -> str:
    config = {"exampleQuery": example_operation(settings)}
    return _TEMPLATE.replace(CONFIG_PLACEHOLDER, json_for_html(config), 1)


router = APIRouter()


@router.api_route("/graphiql/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def graphiql_asset(name: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    asset = ASSETS.get(name)
    if asset is None or not settings.graphiql_enabled:
        return Response("Not found.", status_code=404, media_type="text/plain; charset=utf-8")
    return FileResponse(asset.path, media_type=asset.media_type, headers={"Cache-Control": asset.cache_control})
