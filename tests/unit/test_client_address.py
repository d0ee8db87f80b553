"""The client-address rule (graph/client_address.py) and the throttle's bucket keys, as properties.

The one that matters: whatever a client writes into X-Forwarded-For, the address chosen with
N trusted hops is the entry the first of those N proxies appended.
"""

from __future__ import annotations

import ipaddress
import string

from hypothesis import given
from hypothesis import strategies as st

from graph.client_address import UNKNOWN, canonical_ip, choose_client
from graph.throttle import account_key, address_key

SECRET = "unit-test-secret"
ips = st.ip_addresses().map(str)
# What a client may write: addresses, garbage, separators, spaces, ports, brackets, scope ids.
garbage = st.text(alphabet=string.printable, max_size=30) | st.sampled_from(
    ["", " ", ",", "unknown", "1.2.3.4:80", "[::1]", "999.1.1.1", "::1%eth0", "fe80::1%a b", "localhost", "0x7f.1"]
)
forged_entries = st.lists(ips | garbage, max_size=8)
hops = st.integers(min_value=1, max_value=5)


def split_into_headers(value: str, cuts: list[int]) -> list[str]:
    """`value` sent as several X-Forwarded-For headers, cut at some of its commas (RFC 9110:
    repeated fields are one comma-joined list)."""
    parts = value.split(",")
    headers, start = [], 0
    for cut in sorted({c % (len(parts) + 1) for c in cuts}):
        if 0 < cut < len(parts) and cut > start:
            headers.append(",".join(parts[start:cut]))
            start = cut
    headers.append(",".join(parts[start:]))
    return headers


def is_canonical_ip(text: str) -> bool:
    return canonical_ip(text) == text


@given(peer=ips, chain=st.lists(st.text(max_size=40), max_size=4))
def test_zero_hops_is_the_peer_whatever_the_header(peer: str, chain: list[str]) -> None:
    assert choose_client(peer, chain, 0) == canonical_ip(peer)


@given(peer=ips, forged=forged_entries, appended=st.lists(ips, min_size=1, max_size=5), cuts=st.lists(st.integers()))
def test_the_entry_counted_from_the_right_cannot_be_forged(
    peer: str, forged: list[str], appended: list[str], cuts: list[int]
) -> None:
    # given a client that wrote `forged`, then len(appended) trusted proxies that each appended one entry
    value = ", ".join([*forged, *appended])
    # when the header arrives, possibly as several header lines
    chosen = choose_client(peer, split_into_headers(value, cuts), len(appended))
    # then the client is what the first trusted proxy saw, whatever was forged on the left
    assert chosen == canonical_ip(appended[0])


@given(peer=ips, appended=st.lists(ips, min_size=1, max_size=4), extra=hops)
def test_a_chain_shorter_than_the_hops_gives_its_left_most_entry(peer: str, appended: list[str], extra: int) -> None:
    # given fewer entries than configured hops (the request skipped a proxy; no client text)
    chosen = choose_client(peer, [", ".join(appended)], len(appended) + extra)
    # then the left-most, proxy-written entry, not the last proxy's socket address
    assert chosen == canonical_ip(appended[0])


@given(
    peer=ips,
    forged=forged_entries,
    bad=garbage.map(lambda t: t.replace(",", "")).filter(lambda t: canonical_ip(t) is None),
    n=hops,
)
def test_a_chosen_entry_that_is_no_ip_address_falls_back_to_the_peer(
    peer: str, forged: list[str], bad: str, n: int
) -> None:
    # given the entry N from the right is not an IP address
    trailing = ["203.0.113.1"] * (n - 1)
    value = ", ".join([*forged, bad, *trailing])
    # then the peer, never the text
    assert choose_client(peer, [value], n) == canonical_ip(peer)


@given(peer=ips | st.none() | st.just("testclient"), chain=st.lists(st.text(max_size=60), max_size=4), n=hops)
def test_the_result_is_always_the_peer_or_a_canonical_address(peer: str | None, chain: list[str], n: int) -> None:
    chosen = choose_client(peer, chain, n)
    fallback = UNKNOWN if not peer else canonical_ip(peer) or peer
    assert chosen == fallback or is_canonical_ip(chosen)
    assert "%" not in chosen and "," not in chosen and " " not in chosen


def test_no_header_is_the_peer() -> None:
    assert choose_client("10.0.0.7", [], 2) == "10.0.0.7"
    assert choose_client(None, [], 1) == UNKNOWN


def test_examples_of_the_rule() -> None:
    fly = ["1.2.3.4, 182.48.134.168, 66.241.125.59"]  # forged, client, app's anycast IP
    assert choose_client("172.16.0.1", fly, 2) == "182.48.134.168"
    render = ["2.2.2.2,1.1.1.1, 172.71.95.118, 10.19.64.237"]  # forged, client, Cloudflare, balancer
    assert choose_client("10.0.0.1", render, 3) == "1.1.1.1"
    assert choose_client("10.0.0.1", ["9.9.9.9", "198.51.100.7"], 1) == "198.51.100.7"  # two header lines
    assert choose_client("10.0.0.1", ["198.51.100.7:4711"], 1) == "10.0.0.1"  # a port: not an address
    assert choose_client("10.0.0.1", ["::ffff:198.51.100.7"], 1) == "198.51.100.7"
    assert choose_client("10.0.0.1", ["2001:DB8::0001%eth0"], 1) == "2001:db8::1"
    assert choose_client("10.0.0.1", ["198.51.100.7, "], 1) == "10.0.0.1"  # an empty right-most entry


@given(ip=st.ip_addresses(v=4))
def test_ipv4_buckets_are_the_address(ip: ipaddress.IPv4Address) -> None:
    assert address_key(str(ip)) == str(ip)


@given(net=st.integers(min_value=0, max_value=2**64 - 1), a=st.integers(0, 2**64 - 1), b=st.integers(0, 2**64 - 1))
def test_ipv6_buckets_are_the_slash_64(net: int, a: int, b: int) -> None:
    first = str(ipaddress.IPv6Address((net << 64) | a))
    second = str(ipaddress.IPv6Address((net << 64) | b))
    assert address_key(first) == address_key(second)
    assert address_key(first) == str(ipaddress.IPv6Network(((net << 64), 64)))
    other = str(ipaddress.IPv6Address((((net + 1) % 2**64) << 64) | a))
    assert address_key(other) != address_key(first)


def test_non_address_peers_keep_their_server_given_name() -> None:
    assert address_key(UNKNOWN) == UNKNOWN


@given(email=st.text(max_size=300), pad=st.sampled_from(["", " ", "\t", "  \n"]))
def test_account_keys_are_bounded_and_normalised(email: str, pad: str) -> None:
    key = account_key(email, SECRET)
    assert len(key) == 32 and all(c in string.hexdigits for c in key)
    # every spelling that logs into the same account shares its key
    assert account_key(pad + email.upper() + pad, SECRET) == account_key(email.upper(), SECRET)


def test_account_keys_differ_per_account_and_hide_the_address() -> None:
    assert account_key("Victim@Example.com ", SECRET) == account_key("victim@example.com", SECRET)
    assert account_key("victim@example.com", SECRET) != account_key("victim2@example.com", SECRET)
    assert account_key("victim@example.com", SECRET) != account_key("victim@example.com", "another secret")
    assert "victim" not in account_key("victim@example.com", SECRET)
    assert len(account_key("\ud800@example.com", SECRET)) == 32  # a lone surrogate from JSON
