"""Which browser origins may call the API: `CORS_ORIGINS`, plus any local page in development.

A frontend developer's dev server runs on `http://localhost:<port>` or `http://127.0.0.1:<port>`
(Vite, Next.js, Create React App...), a port that changes from project to project: outside
production those origins are allowed without configuration, for HTTP (CORS) and for the
WebSocket handshake alike. Production allows exactly `CORS_ORIGINS`.
"""

from __future__ import annotations

import re
from typing import Final

from infrastructure.settings import Settings

#: Matched whole (`fullmatch`, as Starlette's CORSMiddleware does): scheme, host, optional port.
LOCAL_DEVELOPMENT_ORIGINS: Final = r"http://(?:localhost|127\.0\.0\.1)(?::[0-9]{1,5})?"
_LOCAL: Final = re.compile(LOCAL_DEVELOPMENT_ORIGINS)


def origin_regex(settings: Settings) -> str | None:
    """The pattern of origins allowed beyond `CORS_ORIGINS` (None in production)."""
    return None if settings.is_production else LOCAL_DEVELOPMENT_ORIGINS


def is_local_development_origin(origin: str, settings: Settings) -> bool:
    return not settings.is_production and _LOCAL.fullmatch(origin) is not None
