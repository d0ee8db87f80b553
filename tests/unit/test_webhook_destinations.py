"""Webhook URL checks: form, scheme, allowlist and resolution, with an injected resolver (no network)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.webhooks import DeliveryFailure, ForbiddenDestination
from infrastructure.settings import Settings
from infrastructure.webhooks.addresses import parse_networks
from infrastructure.webhooks.destinations import MAX_URL_LENGTH, ResolvingDestinations
from infrastructure.webhooks.factory import build_destinations

PUBLIC = "93.184.215.14"


def fixed(*answers: str):  # type: ignore[no-untyped-def]
    async def resolve(_host: str, _port: int) -> Sequence[str]:
        return answers

    return resolve


def destinations(*answers: str, allow_http: bool = True, allowed: Sequence[str] = ()) -> ResolvingDestinations:
    return ResolvingDestinations(
        allow_http=allow_http, allowed_networks=parse_networks(allowed), resolver=fixed(*(answers or (PUBLIC,)))
    )


async def refused(check: ResolvingDestinations, url: str) -> DeliveryFailure:
    with pytest.raises(ForbiddenDestination) as caught:
        await check.check(url)
    return caught.value.failure


async def test_a_public_https_url_is_accepted() -> None:
    checked = await destinations().resolve("https://hooks.example.com/genhub?x=1")
    assert checked.host == "hooks.example.com" and checked.port == 443
    assert [str(a) for a in checked.addresses] == [PUBLIC]


@pytest.mark.parametrize(
    ("url", "failure"),
    [
        ("ftp://hooks.example.com/", DeliveryFailure.NOT_HTTPS),
        ("file:///etc/passwd", DeliveryFailure.NOT_HTTPS),
        ("javascript:alert(1)", DeliveryFailure.NOT_HTTPS),
        ("//hooks.example.com/x", DeliveryFailure.NOT_HTTPS),
        ("/relative", DeliveryFailure.NOT_HTTPS),
        ("https:hooks.example.com", DeliveryFailure.NOT_HTTPS),
        ("https://user:pass@hooks.example.com/", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://user@hooks.example.com/", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https:///path", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://hooks.example.com:0/", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://hooks.example.com:99999/", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://hooks.example.com/\nHost: x", DeliveryFailure.FORBIDDEN_ADDRESS),
        (" https://hooks.example.com/", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("", DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, DeliveryFailure.FORBIDDEN_ADDRESS),
        ("https://256.1.1.1/", DeliveryFailure.FORBIDDEN_ADDRESS),
    ],
)
async def test_malformed_urls_are_refused(url: str, failure: DeliveryFailure) -> None:
    assert await refused(destinations(), url) is failure


async def test_http_is_refused_unless_allowed() -> None:
    assert await refused(destinations(allow_http=False), "http://hooks.example.com/") is DeliveryFailure.NOT_HTTPS
    await destinations(allow_http=True).check("http://hooks.example.com/")


@pytest.mark.parametrize(
    "answer", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1%2", "::ffff:10.0.0.1", "0.0.0.0"]
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused(answer: str) -> None:
    assert await refused(destinations(answer), "https://hooks.example.com/") is DeliveryFailure.FORBIDDEN_ADDRESS


async def test_one_forbidden_answer_among_public_ones_refuses() -> None:
    check = destinations(PUBLIC, "2606:4700::1", "192.168.1.1")
    assert await refused(check, "https://hooks.example.com/") is DeliveryFailure.FORBIDDEN_ADDRESS


async def test_the_allowlist_admits_its_networks_only() -> None:
    await destinations("127.0.0.1", allowed=["127.0.0.1/32"]).check("http://localhost:8080/")
    check = destinations("127.0.0.1", "127.0.0.2", allowed=["127.0.0.1/32"])
    assert await refused(check, "http://localhost:8080/") is DeliveryFailure.FORBIDDEN_ADDRESS


async def test_resolution_failures_are_dns_failures() -> None:
    async def broken(_host: str, _port: int) -> Sequence[str]:
        raise OSError("no such name")

    async def slow(_host: str, _port: int) -> Sequence[str]:
        await asyncio.sleep(10)
        return [PUBLIC]

    for resolver, timeout in ((broken, 1.0), (slow, 0.05), (fixed(), 1.0), (fixed("not-an-ip"), 1.0)):
        check = ResolvingDestinations(allow_http=True, resolver=resolver, dns_timeout_seconds=timeout)
        assert await refused(check, "https://hooks.example.com/") is DeliveryFailure.DNS


url_parts = st.sampled_from(
    ["http://", "https://", "HTTPS://", "ftp://", "//", "http:", "", "http:\\\\", "https://user:pw@", "https://@"]
)
hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "2130706433",
            "0x7f.1",
            "[::1]",
            "[fe80::1%25eth0]",
            "[::ffff:127.0.0.1]",
            "localhost",
            "example.com",
            "xn--bcher-kva.de",
            "bücher.de",
            "[",
            "]",
            "%00",
            "a..b",
            "",
        ]
    ),
    st.text(max_size=40),
)
tails = st.one_of(
    st.sampled_from(["", "/", ":443/", ":0", ":-1/", ":65536", "/#frag", "?q=%zz", "@evil.test/"]), st.text(max_size=20)
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(url_parts, hosts, tails)
async def test_hostile_urls_are_refused_cleanly_or_accepted(scheme: str, host: str, tail: str) -> None:
    # given a check whose every name resolves to a public address (so only the URL's form decides)
    check = destinations(allow_http=False)
    url = scheme + host + tail
    try:
        checked = await check.resolve(url)
    except ForbiddenDestination as refusal:
        assert refusal.failure in DeliveryFailure
        assert len(refusal.message) < 200
        return
    # then an accepted URL is absolute https with a host and no userinfo
    assert checked.url.scheme == "https" and checked.host and not checked.url.userinfo
    assert 1 <= checked.port <= 65535


@settings(max_examples=200)
@given(st.text(max_size=300))
async def test_any_text_is_refused_cleanly_or_accepted(url: str) -> None:
    with contextlib.suppress(ForbiddenDestination):
        await destinations().check(url)


def test_settings_allow_http_outside_production_only_by_default() -> None:
    assert Settings(_env_file=None).webhook_http_allowed  # type: ignore[call-arg]
    assert not Settings(_env_file=None, environment="production").webhook_http_allowed  # type: ignore[call-arg]
    explicit = Settings(_env_file=None, environment="production", webhook_allow_http=True)  # type: ignore[call-arg]
    assert explicit.webhook_http_allowed


def test_settings_read_the_allowlist_as_comma_separated_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32, ::1/128")
    assert Settings(_env_file=None).webhook_allowed_networks == ["127.0.0.1/32", "::1/128"]  # type: ignore[call-arg]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", '["10.0.0.0/8"]')
    assert Settings(_env_file=None).webhook_allowed_networks == ["10.0.0.0/8"]  # type: ignore[call-arg]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.5/8")
    with pytest.raises(ValueError, match="CIDR"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_an_allowlist_in_production_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    production = Settings(_env_file=None, environment="production", webhook_allowed_networks=["127.0.0.1/32"])  # type: ignore[call-arg]
    with caplog.at_level(logging.WARNING, logger="genhub.webhooks"):
        build_destinations(production)
    assert any("WEBHOOK_ALLOWED_NETWORKS" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="genhub.webhooks"):
        build_destinations(Settings(_env_file=None, webhook_allowed_networks=["127.0.0.1/32"]))  # type: ignore[call-arg]
    assert caplog.records == []
