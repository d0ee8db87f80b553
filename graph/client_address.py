"""The client's address, for HTTP and WebSocket alike: the socket peer, or the X-Forwarded-For
entry written by the proxy that `TRUSTED_PROXY_HOPS` says is the first of ours.

Rules (docs/deploy.md, "Client addresses behind a proxy"):
- hops = 0: the socket peer; X-Forwarded-For is ignored entirely.
- hops = N: every X-Forwarded-For header joined in order, then the N-th entry from the right.
  Proxies append to the right, so a client can only add entries on the left: nothing it
  sends moves the entry counted from the right.
- fewer than N entries: the left-most. The chain is shorter than configured (a request
  that did not pass every proxy); all of its entries were still appended by proxies,
  whereas the peer would be the last proxy, the same address for every client.
- no header, or the chosen entry is not a bare IP address (garbage, a port, brackets):
  the socket peer. Nothing that fails to parse is used.

Addresses are returned canonical (`ipaddress`), IPv4-mapped IPv6 as IPv4, IPv6 without a
scope id, so the same client always gets the same rate-limit bucket and no raw header
text reaches Redis keys.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from starlette.requests import HTTPConnection

log = logging.getLogger("genhub.client_address")

UNKNOWN = "unknown"
_LOGGED_CHAIN = 200  # characters of X-Forwarded-For shown in the debug line


def canonical_ip(text: str) -> str | None:
    """`text` as a canonical IP address, or None when it is not exactly one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Address(int(address)))  # without its scope id ("%" and free text)
    return str(address)


def choose_client(peer: str | None, forwarded_for: Sequence[str], hops: int) -> str:
    """The client address from the socket `peer`, the X-Forwarded-For header values (in order)
    and the number of trusted proxy hops; see the module docstring for the rules."""
    fallback = _peer(peer)
    if hops <= 0 or not forwarded_for:
        return fallback
    # rsplit: only the right-most `hops` entries are ever looked at, however long the header.
    entries = ",".join(forwarded_for).rsplit(",", hops)
    chosen = entries[max(0, len(entries) - hops)]
    return canonical_ip(chosen) or fallback


def client_address(connection: HTTPConnection, hops: int) -> str:
    """The address of the client behind `connection` (an HTTP request or a WebSocket)."""
    peer = connection.client.host if connection.client else None
    chain = connection.headers.getlist("x-forwarded-for")
    address = choose_client(peer, chain, hops)
    if chain and log.isEnabledFor(logging.DEBUG):
        log.debug(
            "client address %s (peer %s, %d trusted hops, X-Forwarded-For %r)",
            address,
            peer,
            hops,
            ",".join(chain)[-_LOGGED_CHAIN:],
        )
    return address


def _peer(peer: str | None) -> str:
    if not peer:
        return UNKNOWN
    # The server wrote it; canonical when it is an IP (a test client may name itself).
    return canonical_ip(peer) or peer
