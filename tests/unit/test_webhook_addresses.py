"""The SSRF address rules on generated addresses: every forbidden range and its IPv6 disguises, and public ones."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.webhooks.addresses import (
    IPV4_FORBIDDEN,
    IPV6_FORBIDDEN,
    METADATA_ADDRESSES,
    allowed_by,
    forbidden_reason,
    parse_networks,
)

#: Each forbidden IPv4 range named in the policy (written out here, not read from the module).
FORBIDDEN_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
]
FORBIDDEN_V6 = [
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:db8::/32",
    "2001:2::/48",
    "fc00::/7",
    "fd00:ec2::254/128",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
]
#: Blocks allocated to public networks (documentation and special ranges excluded).
PUBLIC_V4 = ["1.0.0.0/8", "8.0.0.0/7", "45.0.0.0/8", "77.0.0.0/8", "151.101.0.0/16", "200.0.0.0/8"]
PUBLIC_V6 = ["2001:4860::/32", "2606:4700::/32", "2a00:1450::/32", "2400:cb00::/32"]


def in_network(cidrs: list[str]) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    def pick(cidr: str) -> st.SearchStrategy[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        network = ipaddress.ip_network(cidr)
        return st.integers(0, network.num_addresses - 1).map(lambda i: network[i])

    return st.sampled_from(cidrs).flatmap(pick)


forbidden_v4 = in_network(FORBIDDEN_V4).map(lambda a: ipaddress.IPv4Address(int(a)))
public_v4 = in_network(PUBLIC_V4).map(lambda a: ipaddress.IPv4Address(int(a)))


@given(in_network(FORBIDDEN_V4))
def test_every_forbidden_ipv4_range_is_refused(address: ipaddress.IPv4Address) -> None:
    assert forbidden_reason(address) is not None


@given(in_network(FORBIDDEN_V6))
def test_every_forbidden_ipv6_range_is_refused(address: ipaddress.IPv6Address) -> None:
    assert forbidden_reason(address) is not None


@given(forbidden_v4)
def test_forbidden_ipv4_in_every_ipv6_disguise_is_refused(inner: ipaddress.IPv4Address) -> None:
    # mapped, compatible, NAT64 and 6to4 forms of a forbidden IPv4 address
    value = int(inner)
    disguises = [
        ipaddress.IPv6Address((0xFFFF << 32) | value),  # ::ffff:a.b.c.d
        ipaddress.IPv6Address(value),  # ::a.b.c.d
        ipaddress.IPv6Address((0x64FF9B << 96) | value),  # 64:ff9b::a.b.c.d
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80)),  # 2002:abcd:efgh::
    ]
    for address in disguises:
        assert forbidden_reason(address) is not None, address


@given(public_v4, st.integers(0, 2**32 - 1))
def test_teredo_is_refused_whatever_it_carries(inner: ipaddress.IPv4Address, client_bits: int) -> None:
    teredo = ipaddress.IPv6Address((0x20010000 << 96) | (int(inner) << 64) | client_bits)
    assert forbidden_reason(teredo) is not None


@given(public_v4)
def test_public_ipv4_is_allowed_also_through_nat64_and_6to4(address: ipaddress.IPv4Address) -> None:
    assert forbidden_reason(address) is None
    assert forbidden_reason(ipaddress.IPv6Address((0x64FF9B << 96) | int(address))) is None
    assert forbidden_reason(ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))) is None


@given(public_v4)
def test_ipv4_mapped_forms_are_refused_even_of_public_addresses(address: ipaddress.IPv4Address) -> None:
    assert forbidden_reason(ipaddress.IPv6Address((0xFFFF << 32) | int(address))) is not None


@given(in_network(PUBLIC_V6))
def test_public_ipv6_is_allowed(address: ipaddress.IPv6Address) -> None:
    assert forbidden_reason(address) is None


@given(in_network(PUBLIC_V6), st.sampled_from(["eth0", "1", "lo"]))
def test_an_address_with_a_zone_id_is_refused(address: ipaddress.IPv6Address, zone: str) -> None:
    assert forbidden_reason(ipaddress.IPv6Address(f"{address}%{zone}")) is not None


def test_metadata_addresses_are_refused_with_their_reason() -> None:
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"):
        assert forbidden_reason(ipaddress.ip_address(address)) == "cloud metadata"
    assert ipaddress.ip_address("169.254.169.254") in METADATA_ADDRESSES


def test_the_module_tables_cover_the_policy() -> None:
    tables = {str(network) for network, _reason in IPV4_FORBIDDEN + IPV6_FORBIDDEN}
    for cidr in FORBIDDEN_V4[:-1] + [c for c in FORBIDDEN_V6 if not c.startswith("fd00:ec2")]:
        assert cidr in tables or ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network("fc00::/7")), cidr


@given(st.integers(0, 2**32 - 1))
def test_the_allowlist_holds_only_its_own_networks(value: int) -> None:
    allowed = parse_networks(["127.0.0.1/32"])
    address = ipaddress.IPv4Address(value)
    assert allowed_by(address, allowed) == (value == int(ipaddress.IPv4Address("127.0.0.1")))
    assert not allowed_by(ipaddress.IPv6Address((0xFFFF << 32) | value), allowed)


def test_parse_networks_refuses_malformed_cidrs() -> None:
    for bad in ("127.0.0.1/33", "10.0.0.5/8", "example.com", "", "::1/129"):
        try:
            parse_networks([bad])
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
