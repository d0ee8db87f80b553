"""Shared by the client-address tests (integration and e2e): what a client may write into
X-Forwarded-For, the documented rule written out plainly, and where the server counted a login."""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Sequence

import redis.asyncio as aioredis
from hypothesis import strategies as st

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
PASSWORD = "correct horse battery"

# What a client may write into X-Forwarded-For: addresses of both families, and garbage
# (printable ASCII without line breaks: what an HTTP header line can carry).
HEADER_TEXT = "".join(c for c in string.printable if c not in "\r\n\t\x0b\x0c")
entries = (
    st.ip_addresses().map(str)
    | st.text(alphabet=HEADER_TEXT, max_size=24)
    | st.sampled_from(["unknown", "1.2.3.4:80", "[::1]", "999.1.1.1", "::1%eth0", "", "localhost"])
)
forged_headers = st.lists(st.lists(entries, max_size=6).map(", ".join).map(str.strip), max_size=3)
peers = st.ip_addresses().map(str)


def canonical(text: str) -> str | None:
    """The test's own reading of one address (independent of graph/client_address.py)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ipaddress.IPv6Address(int(ip)))
    return str(ip)


def expected_client(peer: str, headers: Sequence[str], hops: int) -> str:
    """The documented rule, written out plainly: N-th entry from the right, else the peer."""
    fallback = canonical(peer) or peer
    if hops == 0 or not headers:
        return fallback
    all_entries = ",".join(headers).split(",")
    chosen = all_entries[-hops] if len(all_entries) >= hops else all_entries[0]
    return canonical(chosen) or fallback


async def counted_addresses(redis: aioredis.Redis, action: str = "login") -> set[str]:
    """The address buckets the server counted `action` in."""
    prefix = f"rl:{action}:ip:"
    keys = [key.decode() if isinstance(key, bytes) else key for key in await redis.keys(prefix + "*")]
    return {key.removeprefix(prefix) for key in keys}
