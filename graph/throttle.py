"""Rate limits of the GraphQL layer keyed by what the transport knows: the client address, the
account an e-mail names (the client address is transport, not domain).

Bucket keys, one scheme for all limits (Redis sorted sets with REDIS_URL, in-process otherwise):
- `{action}:ip:{address}` here, for login, register, refresh, generate, upload; an IPv6
  address counts as its /64 (one subscriber's usual allocation), else rotating through it
  would give an attacker 2**64 buckets;
- `{action}:account:{digest}` here, for login and register: a keyed hash of the normalised
  e-mail (bounded, and no client text in Redis keys), so rotating addresses against one
  account is stopped too; the hash's key is Settings.purpose_secret("throttle-keys"), a key
  used for nothing else, so no key name reveals anything about other keys;
- `password-check:user:{user_id}` here, for changePassword and deleteAccount: the signed-in
  user's one budget of guesses of their current password (`password_checks`). Login's account
  bucket is not it, so strangers failing logins with a user's e-mail cannot lock that user
  out of changing their password or deleting the account;
- `{action}:{user_id}` in the use cases, for generate and upload; `refresh:family:{id}` in
  the refresh use case.

Anonymous actions allow their limit per window per address. Signed-in actions allow
`limit * rate_limit_ip_multiplier` per address, so the users behind one NAT are not
throttled as one, while one address cannot rotate accounts past the per-user limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Sequence

from domain.ports import RateBucket
from domain.users import normalize_email
from graph.context import Context

IPV6_BUCKET_PREFIX = 64


def address_key(address: str) -> str:
    """The bucket part for a client address: IPv4 as is, IPv6 as its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown", or a name the server itself gave the peer
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET_PREFIX), strict=False))
    return str(ip)


def account_key(email: str, key: str) -> str:
    """The bucket part for the account `email` names: every spelling that logs into the same
    account (normalize_email) gets the same 32 hex characters. `key` is the throttle keys' own."""
    # surrogatepass: a JSON string may carry a lone surrogate, which strict UTF-8 refuses.
    normal = normalize_email(email).encode("utf-8", "surrogatepass")
    return hmac.new(key.encode(), normal, hashlib.sha256).hexdigest()[:32]


def ip_bucket(context: Context, action: str, limit: int, *, signed_in: bool = False) -> RateBucket:
    """The caller's address bucket for `action`; a signed-in action gets the multiplied limit."""
    settings = context.services.settings
    if signed_in:
        limit *= settings.rate_limit_ip_multiplier
    return RateBucket(f"{action}:ip:{address_key(context.client_ip)}", limit, settings.rate_limit_window_seconds)


def account_bucket(context: Context, action: str, email: str, limit: int) -> RateBucket:
    """The bucket of the account `email` names for `action`, whatever address the call comes from."""
    settings = context.services.settings
    key = account_key(email, settings.purpose_secret("throttle-keys"))
    return RateBucket(f"{action}:account:{key}", limit, settings.rate_limit_account_window_seconds)


def login_guesses(context: Context, email: str) -> RateBucket:
    """The budget of login's password guesses for the account `email` names, from anywhere."""
    return account_bucket(context, "login", email, context.services.settings.rate_limit_login_account)


def password_checks(context: Context, user_id: uuid.UUID) -> RateBucket:
    """The signed-in user's one budget of current-password guesses, shared by changePassword and
    deleteAccount (a guess through one counts against both); only the user's own sessions spend it."""
    settings = context.services.settings
    return RateBucket(
        f"password-check:user:{user_id}", settings.rate_limit_login_account, settings.rate_limit_account_window_seconds
    )


async def throttle(context: Context, buckets: Sequence[RateBucket]) -> None:
    """Count one hit in every bucket, or in none when any is full: then RateLimited (with the wait)."""
    await context.services.throttle.hit(buckets)
