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
from domain.ports import RateBucket
from graph.context import Context


def ip_bucket(context: Context, action: str, limit: int, *, signed_in: bool = False) -> RateBucket:
    """The caller's address bucket for `action`; a signed-in action gets the multiplied limit."""
    settings = context.container.settings
    if signed_in:
        limit *= settings.rate_limit_ip_multiplier
    return RateBucket(f"{action}:ip:{context.client_ip}", limit, settings.rate_limit_window_seconds)


async def throttle_ip(context: Context, action: str, limit: int, *, signed_in: bool = False) -> None:
    """Count one `action` from the caller's address; raises RateLimited (with the wait) past the limit.

    Signed-in actions whose use case also limits per user pass `ip_bucket(...)` to it
    instead, so both buckets are counted in one hit (one Redis round trip).
    """
    wait = await context.container.limiter.hit_all([ip_bucket(context, action, limit, signed_in=signed_in)])
    if wait:
        raise RateLimited(wait)
