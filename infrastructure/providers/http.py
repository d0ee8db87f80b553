"""The one shared HTTP client of a process, for provider calls and output downloads."""

from __future__ import annotations

import httpx

from infrastructure.settings import Settings


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """Timeouts from `provider_timeout_seconds` (connect capped at 10 s) and bounded pooling.

    Redirects are followed for CDN links; httpx drops Authorization on a cross-origin hop.
    """
    timeout = httpx.Timeout(settings.provider_timeout_seconds, connect=min(10.0, settings.provider_timeout_seconds))
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True, headers={"User-Agent": "genhub"})
