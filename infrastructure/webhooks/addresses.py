"""Which IP addresses a webhook may be delivered to: the pure address rules of the SSRF policy.

`forbidden_reason(address)` says why an address must not be called (None: it may). Deny by
default: besides the named ranges below, anything Python's `ipaddress` does not consider
globally reachable is refused. IPv6 forms that carry an IPv4 address (NAT64, 6to4) are judged
by the IPv4 address they lead to; IPv4-mapped and IPv4-compatible forms, Teredo and any
address with a zone id are refused outright (a public name has no business resolving to them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata and host services (checked before the ranges, for a precise reason).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean instance metadata
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure host (WireServer): a public address, but the host's own service
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # AWS DNS over IPv6
    )
)


def _networks(*table: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in table)


IPV4_FORBIDDEN = _networks(
    ("0.0.0.0/8", "unspecified / this network"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)

IPV6_FORBIDDEN = _networks(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("::ffff:0:0:0/96", "IPv4-translated"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "ORCHID"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address leads to."""
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _table_reason(address: IPAddress) -> str | None:
    table = IPV4_FORBIDDEN if address.version == 4 else IPV6_FORBIDDEN
    for network, reason in table:
        if address in network:
            return reason
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why `address` must not be called (a short phrase), or None when it may."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "scoped (zone id)"
        inner = embedded_ipv4(address)
        if inner is not None:
            inner_reason = forbidden_reason(inner)
            return None if inner_reason is None else f"leads to {inner_reason} IPv4"
    reason = _table_reason(address)
    if reason is not None:
        return reason
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "not globally routable"
    return None


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (`127.0.0.1/32`, `fd00::/8`); ValueError names the first malformed one."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=True))
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR form (host bits must be zero): {cidr!r}") from exc
    return tuple(networks)


def allowed_by(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    """Whether an allowlisted network holds the address (a scoped address never matches)."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return False
    return any(address.version == network.version and address in network for network in networks)
