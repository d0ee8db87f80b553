"""Per-IP rate limits of the GraphQL layer (the client address is transport, not domain).

Bucket keys, one scheme for all limits (Redis sorted sets with REDIS_URL, in-process otherwise):
- `{action}:ip:{address}` here, for login, register, refresh, generate, upload;
- `{action}:{user_id}` in the use cases, for generate and upload.

Anonymous actions allow their limit per window per address. Signed-in actions allow
`limit * rate_limit_ip_multiplier` per address, so the users behind one NAT are not
throttled as one, while one address cannot rotate accounts past the per-user limit.
"""

from __future__ import annotations

from domain.errors import RateLimited
from graph.context import Context


async def throttle_ip(context: Context, action: str, limit: int, *, signed_in: bool = False) -> None:
    """Count one `action` from the caller's address; raises RateLimited (with the wait) past the limit."""
    settings = context.container.settings
    if signed_in:
        limit *= settings.rate_limit_ip_multiplier
    wait = await context.container.limiter.hit(
        f"{action}:ip:{context.client_ip}", limit=limit, window_seconds=settings.rate_limit_window_seconds
    )
    if wait:
        raise RateLimited(wait)
