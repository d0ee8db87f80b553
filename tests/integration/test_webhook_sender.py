"""The webhook sender against real local receivers: outcomes, deadlines, the response cap, pinning, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.webhooks import DeliveryFailure, signed_headers, verify
from infrastructure.settings import Settings
from infrastructure.webhooks.addresses import parse_networks
from infrastructure.webhooks.destinations import Resolver, ResolvingDestinations, system_resolver
from infrastructure.webhooks.factory import open_webhooks
from infrastructure.webhooks.sender import USER_AGENT, HttpWebhookSender, build_client
from tests.integration.webhook_receivers import (
    Received,
    answer,
    counting_listener,
    endless_body,
    free_port,
    hang,
    make_authority,
    receiver,
    trickle,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps({"type": "generation.completed", "data": {"id": "R2VuZXJhdGlvbjox"}}).encode()
LOCAL = ("127.0.0.1/32",)


def make_sender(
    *,
    allowed: Sequence[str] = LOCAL,
    resolver: Resolver = system_resolver,
    timeout: float = 3.0,
    connect_timeout: float = 1.0,
    max_bytes: int = 1024,
    concurrency: int = 8,
    verify_tls: ssl.SSLContext | bool = True,
    allow_http: bool = True,
) -> HttpWebhookSender:
    destinations = ResolvingDestinations(
        allow_http=allow_http, allowed_networks=parse_networks(allowed), dns_timeout_seconds=1.0, resolver=resolver
    )
    client = build_client(connect_timeout=connect_timeout, timeout=timeout, concurrency=concurrency, verify=verify_tls)
    return HttpWebhookSender(
        client, destinations, timeout_seconds=timeout, max_response_bytes=max_bytes, concurrency=concurrency
    )


def names(table: dict[str, list[str]]) -> Resolver:
    """A resolver of fixed answers (a name missing from the table does not resolve)."""

    async def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError("unknown name")
        return list(table[host])

    return resolve


def headers_now() -> dict[str, str]:
    return signed_headers([SECRET], "msg_2Lmmd1i5DQq8gS3ULnLfNXbsvzp", int(time.time()), BODY)


@pytest.fixture
async def sender() -> AsyncIterator[HttpWebhookSender]:
    s = make_sender()
    yield s
    await s.aclose()


async def test_a_200_is_delivered_with_the_signed_body_and_fixed_headers(sender: HttpWebhookSender) -> None:
    # given a receiver answering 200
    async with receiver(answer(200, b"ok")) as hook:
        # when a signed message is sent, with a caller trying to set headers the sender owns
        outcome = await sender.send(
            hook.url(), headers={**headers_now(), "Host": "evil.test", "user-agent": "x"}, body=BODY
        )
    # then it is delivered, and the receiver got the exact body, verifiable, with our headers
    assert outcome.delivered and outcome.status_code == 200 and outcome.failure is None
    (got,) = hook.requests
    assert got.method == "POST" and got.target == "/hook" and got.body == BODY
    assert got.headers["user-agent"] == USER_AGENT
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{hook.port}"
    assert verify(SECRET, got.headers, got.body, now=int(time.time()))
    assert "cookie" not in got.headers


async def test_a_500_is_an_http_status_failure_without_the_body(sender: HttpWebhookSender) -> None:
    async with receiver(answer(500, b"secret internals of the receiver")) as hook:
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert not outcome.delivered
    assert (outcome.status_code, outcome.failure) == (500, DeliveryFailure.HTTP_STATUS)
    assert "secret" not in outcome.detail


async def test_a_receiver_that_hangs_is_a_timeout_within_the_deadline() -> None:
    sender = make_sender(timeout=0.5)
    release = asyncio.Event()
    try:
        async with receiver(hang(release)) as hook:
            started = time.monotonic()
            outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
            took = time.monotonic() - started
            release.set()
    finally:
        await sender.aclose()
    assert outcome.failure is DeliveryFailure.TIMEOUT and outcome.status_code is None
    assert 0.4 <= took < 1.5


async def test_a_2xx_with_a_trickling_answer_is_delivered_at_the_whole_request_deadline() -> None:
    # given a receiver that sends a byte at a time, each well within the read timeout
    sender = make_sender(timeout=0.6, max_bytes=4096)
    try:
        async with receiver(trickle(0.05)) as hook:
            started = time.monotonic()
            outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
            took = time.monotonic() - started
    finally:
        await sender.aclose()
    # then the whole-request deadline ends the read, and the 2xx it had sent makes it delivered (not retried)
    assert (outcome.status_code, outcome.failure) == (200, None) and outcome.delivered
    assert "not read in time" in outcome.detail
    assert took < 1.5


async def test_a_redirect_is_not_followed(sender: HttpWebhookSender) -> None:
    # given a receiver redirecting to another local listener (allowlisted, so only "no redirects" stops it)
    async with (
        counting_listener() as target,
        receiver(answer(302, headers={"location": target.url("/stolen")})) as hook,
    ):
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    # then the attempt failed as redirected, and nothing reached the target
    assert (outcome.status_code, outcome.failure) == (302, DeliveryFailure.REDIRECTED)
    assert target.connections == 0


@pytest.mark.parametrize("status", [301, 303, 307, 308])
async def test_every_redirect_status_is_refused(sender: HttpWebhookSender, status: int) -> None:
    async with counting_listener() as target, receiver(answer(status, headers={"location": target.url()})) as hook:
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert (outcome.status_code, outcome.failure) == (status, DeliveryFailure.REDIRECTED)
    assert target.connections == 0


async def test_an_endless_answer_is_capped(sender: HttpWebhookSender) -> None:
    async with receiver(endless_body()) as hook:
        started = time.monotonic()
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    # A 2xx acknowledges the message: delivered, the rest of the answer left unread.
    assert outcome.delivered and outcome.status_code == 200 and "left unread" in outcome.detail
    assert time.monotonic() - started < 2.0


async def test_an_answer_declared_over_the_cap_is_not_read(sender: HttpWebhookSender) -> None:
    async with receiver(answer(200, b"y" * 5000)) as hook:
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert outcome.delivered and "left unread" in outcome.detail


async def test_an_answer_within_the_cap_is_delivered(sender: HttpWebhookSender) -> None:
    async with receiver(answer(204)) as hook:
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert outcome.delivered and outcome.status_code == 204


async def test_an_answer_that_is_not_http_is_a_connect_failure(sender: HttpWebhookSender) -> None:
    async def garbage(_request: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with receiver(garbage) as hook:
        outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert (outcome.status_code, outcome.failure) == (None, DeliveryFailure.CONNECT)
    assert "SSH" not in outcome.detail


async def test_a_refused_connection_is_a_connect_failure(sender: HttpWebhookSender) -> None:
    outcome = await sender.send(f"http://127.0.0.1:{free_port()}/hook", headers=headers_now(), body=BODY)
    assert (outcome.status_code, outcome.failure) == (None, DeliveryFailure.CONNECT)
    assert outcome.detail == "connection refused"


@pytest.mark.parametrize(
    "spelling",
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
        "LOCALHOST",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
        "0",
        "0.0.0.0",
        "[::]",
        "127.000.000.001",
    ],
)
async def test_loopback_in_any_spelling_is_refused_without_connecting(spelling: str) -> None:
    # given no allowlist, and a listener on 127.0.0.1
    sender = make_sender(allowed=())
    try:
        async with counting_listener() as listener:
            outcome = await sender.send(f"http://{spelling}:{listener.port}/hook", headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    # then the attempt is refused as forbidden and the listener saw no connection
    assert outcome.failure is DeliveryFailure.FORBIDDEN_ADDRESS and outcome.status_code is None
    assert listener.connections == 0


async def test_a_name_that_now_resolves_to_a_forbidden_address_is_refused_at_send_time() -> None:
    # given a name that resolved to the allowlisted receiver when it was registered
    table = {"hooks.test": ["127.0.0.1"]}
    sender = make_sender(resolver=names(table))
    try:
        async with counting_listener() as good, counting_listener("127.0.0.2") as bad:
            await sender.destinations.check(good.url(host="hooks.test"))
            # when the name points at another loopback address (not allowlisted) by the time of sending
            table["hooks.test"] = ["127.0.0.2"]
            outcome = await sender.send(f"http://hooks.test:{bad.port}/hook", headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    # then the attempt is refused and nothing connected anywhere
    assert outcome.failure is DeliveryFailure.FORBIDDEN_ADDRESS
    assert good.connections == bad.connections == 0


async def test_any_forbidden_answer_among_several_refuses_the_name() -> None:
    sender = make_sender(resolver=names({"mixed.test": ["127.0.0.1", "10.1.2.3"]}))
    try:
        async with counting_listener() as listener:
            outcome = await sender.send(listener.url(host="mixed.test"), headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    assert outcome.failure is DeliveryFailure.FORBIDDEN_ADDRESS and listener.connections == 0


async def test_the_connection_goes_to_the_checked_address_not_a_fresh_resolution() -> None:
    # given a resolver that answers the allowlisted address once, then a forbidden one (rebinding)
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])

    async def rebinding(host: str, _port: int) -> list[str]:
        assert host == "hooks.test"
        return next(answers)

    sender = make_sender(resolver=rebinding)
    try:
        async with receiver(answer(200)) as hook, counting_listener("127.0.0.2") as other:
            outcome = await sender.send(hook.url(host="hooks.test"), headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    # then the one attempt resolved once and connected to what it checked, with the name as Host
    assert outcome.delivered
    assert other.connections == 0
    (got,) = hook.requests
    assert got.headers["host"] == f"hooks.test:{hook.port}"


async def test_the_next_checked_address_is_tried_when_one_refuses() -> None:
    # given a name with two allowlisted addresses, nothing listening on the first
    async with receiver(answer(200)) as hook:
        sender = make_sender(allowed=("127.0.0.0/8",), resolver=names({"hooks.test": ["127.0.0.2", "127.0.0.1"]}))
        try:
            outcome = await sender.send(hook.url(host="hooks.test"), headers=headers_now(), body=BODY)
        finally:
            await sender.aclose()
    # then the attempt connected to the second one
    assert outcome.delivered and len(hook.requests) == 1


async def test_a_name_pinned_to_an_ipv6_address_is_delivered() -> None:
    async with receiver(answer(200), host="::1") as hook:
        sender = make_sender(allowed=("::1/128",), resolver=names({"hooks.test": ["::1"], "::1": ["::1"]}))
        try:
            by_name = await sender.send(hook.url(host="hooks.test"), headers=headers_now(), body=BODY)
            literal = await sender.send(hook.url(), headers=headers_now(), body=BODY)
        finally:
            await sender.aclose()
    assert by_name.delivered and literal.delivered
    assert [got.headers["host"] for got in hook.requests] == [f"hooks.test:{hook.port}", f"[::1]:{hook.port}"]


async def test_an_unknown_name_is_a_dns_failure(sender: HttpWebhookSender) -> None:
    outcome = await sender.send("http://no-such-host.invalid/hook", headers=headers_now(), body=BODY)
    assert outcome.failure is DeliveryFailure.DNS


async def test_http_is_refused_when_not_allowed() -> None:
    sender = make_sender(allow_http=False)
    try:
        async with counting_listener() as listener:
            outcome = await sender.send(listener.url(), headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    assert outcome.failure is DeliveryFailure.NOT_HTTPS and listener.connections == 0


async def test_cookies_set_by_one_receiver_are_never_sent(sender: HttpWebhookSender) -> None:
    async with receiver(answer(200, headers={"set-cookie": "session=abc; Path=/"})) as hook:
        first = await sender.send(hook.url(), headers=headers_now(), body=BODY)
        second = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert first.delivered and second.delivered
    assert all("cookie" not in got.headers for got in hook.requests)


async def test_proxies_from_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    async with counting_listener() as proxy, receiver(answer(200)) as hook:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        sender = make_sender()
        try:
            outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
        finally:
            await sender.aclose()
    assert outcome.delivered and proxy.connections == 0


async def test_concurrency_is_bounded_per_sender() -> None:
    release = asyncio.Event()
    sender = make_sender(concurrency=2, timeout=5.0)
    try:
        async with receiver(hang(release)) as hook:
            sends = [asyncio.create_task(sender.send(hook.url(), headers=headers_now(), body=BODY)) for _ in range(5)]
            while hook.connections < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # room for a third connection, were the bound not kept
            assert hook.most_open == 2
            release.set()
            await asyncio.gather(*sends)
    finally:
        await sender.aclose()
    assert hook.most_open == 2


async def test_tls_verifies_the_name_while_connecting_to_the_pinned_address(tmp_path: Path) -> None:
    # given an HTTPS receiver on 127.0.0.1 holding a certificate for hooks.test from a test authority
    authority = make_authority()
    context = authority.server_context("hooks.test", tmp_path)
    sender = make_sender(resolver=names({"hooks.test": ["127.0.0.1"]}), verify_tls=authority.client_context())
    try:
        async with receiver(answer(200), ssl_context=context) as hook:
            outcome = await sender.send(hook.url(host="hooks.test", scheme="https"), headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    # then the name was sent as SNI, verified against the certificate, and kept as Host
    assert outcome.delivered, outcome
    assert hook.server_names == ["hooks.test"]
    assert hook.requests[0].headers["host"] == f"hooks.test:{hook.port}"


async def test_a_certificate_for_another_name_fails_to_connect(tmp_path: Path) -> None:
    authority = make_authority()
    context = authority.server_context("other.test", tmp_path)
    sender = make_sender(resolver=names({"hooks.test": ["127.0.0.1"]}), verify_tls=authority.client_context())
    try:
        async with receiver(answer(200), ssl_context=context) as hook:
            outcome = await sender.send(hook.url(host="hooks.test", scheme="https"), headers=headers_now(), body=BODY)
    finally:
        await sender.aclose()
    assert outcome.failure is DeliveryFailure.CONNECT
    assert "certificate" in outcome.detail
    assert hook.requests == []


async def test_the_composition_root_builds_one_sender_from_settings() -> None:
    import contextlib

    settings = Settings(_env_file=None, webhook_allowed_networks=["127.0.0.1/32"], webhook_timeout_seconds=2.0)  # type: ignore[call-arg]
    async with contextlib.AsyncExitStack() as stack:
        destinations, sender = open_webhooks(settings, stack)
        async with receiver(answer(200)) as hook:
            await destinations.check(hook.url())
            outcome = await sender.send(hook.url(), headers=headers_now(), body=BODY)
    assert outcome.delivered


@pytest.fixture(scope="module")
async def forbidding_sender() -> AsyncIterator[HttpWebhookSender]:
    """A sender whose every name resolves to a forbidden address (nothing may be reached)."""
    sender = make_sender(allowed=(), resolver=names_all(["10.0.0.1"]))
    yield sender
    await sender.aclose()


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(
            "{}{}{}".format,
            st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "//", "https://u:p@", ""]),
            st.one_of(st.sampled_from(["hooks.test", "[::1]", "0x7f.1", "[fe80::1%25lo]", ""]), st.text(max_size=30)),
            st.one_of(st.sampled_from(["", "/", ":1/", ":65536/", "/\\r\\nX: y"]), st.text(max_size=30)),
        ),
    )
)
async def test_hostile_urls_never_make_send_raise_or_connect(forbidding_sender: HttpWebhookSender, url: str) -> None:
    outcome = await forbidding_sender.send(url, headers=headers_now(), body=BODY)
    # then each attempt is refused before any connection, as an outcome
    assert outcome.failure in {DeliveryFailure.FORBIDDEN_ADDRESS, DeliveryFailure.NOT_HTTPS, DeliveryFailure.DNS}
    assert outcome.status_code is None


def names_all(answer_list: list[str]) -> Resolver:
    async def resolve(_host: str, _port: int) -> list[str]:
        return list(answer_list)

    return resolve
