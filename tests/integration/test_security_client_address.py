"""Security #15, point 8: a client cannot choose the address it is throttled under, and rotating
addresses does not get past the per-account limits. Through the real app (ASGI), over HTTP and
WebSocket, on real Redis and PostgreSQL; the real-socket twin is tests/e2e/test_client_address_server.py.

The address the server used is read back from the Redis bucket it counted (`rl:login:ip:<address>`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.users import refresh_token_hash
from graph.throttle import address_key
from infrastructure.security.passwords import Argon2PasswordHasher
from tests.fixtures.app import GraphQLClient, app_settings, register_user, running_app
from tests.integration.asgi_websocket import AsgiWebSocket
from tests.integration.forwarded_for import (
    LOGIN,
    PASSWORD,
    canonical,
    counted_addresses,
    entries,
    expected_client,
    forged_headers,
    peers,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REGISTER = """
mutation Register($email: String!) {
  register(input: {email: $email, password: "correct horse battery"}) {
    __typename
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) {
    __typename
    ... on AuthPayload { refreshToken }
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
UNLIMITED = 1_000_000
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def xff(values: Sequence[str]) -> list[tuple[str, str]]:
    return [("x-forwarded-for", v) for v in values]


def unique_email() -> str:
    return f"u{uuid.uuid4().hex}@example.com"


@contextlib.asynccontextmanager
async def app(tmp: Path, redis_url: str, database_url: str, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    limits: dict[str, Any] = {
        "rate_limit_login": UNLIMITED,
        "rate_limit_register": UNLIMITED,
        "rate_limit_login_account": UNLIMITED,
        "rate_limit_register_account": UNLIMITED,
        "rate_limit_refresh_family": UNLIMITED,
    }
    config = app_settings(tmp, redis_url=redis_url, database_url=database_url, **{**limits, **overrides})
    async with running_app(config) as client:
        # Every example logs in once: a cheap argon2 keeps hypothesis fast (the limits come first anyway).
        client.rebind(hasher=Argon2PasswordHasher(time_cost=1, memory_cost=1024))
        yield client


@contextlib.asynccontextmanager
async def seen_from(client: GraphQLClient, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same app, reached from socket peer `peer`."""
    transport = httpx.ASGITransport(app=client.app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def login(http: httpx.AsyncClient, email: str, headers: Sequence[str], password: str = "wrong password 1") -> str:
    response = await http.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": email, "password": password}}, headers=xff(headers)
    )
    assert response.status_code == 200, response.text
    kind: str = response.json()["data"]["login"]["__typename"]
    return kind


@pytest.fixture(scope="module")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
async def apps(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, postgres_url: str
) -> AsyncIterator[dict[int, GraphQLClient]]:
    """The app with TRUSTED_PROXY_HOPS 0 and 1, no limit in the way; one account each for WebSocket."""
    tmp = tmp_path_factory.mktemp("client-address")
    async with (
        app(tmp / "h0", redis_url, postgres_url, trusted_proxy_hops=0) as direct,
        app(tmp / "h1", redis_url, postgres_url, trusted_proxy_hops=1) as proxied,
    ):
        for client in (direct, proxied):
            client.token = (await register_user(client, unique_email()))["accessToken"]
        yield {0: direct, 1: proxied}


# ---------------------------------------------------------------- which address is used


@EXAMPLES
@given(peer=peers, headers=forged_headers)
async def test_without_trusted_hops_a_forged_header_never_changes_the_address(
    apps: dict[int, GraphQLClient], redis: aioredis.Redis, peer: str, headers: list[str]
) -> None:
    # given TRUSTED_PROXY_HOPS=0 and a client that sends whatever X-Forwarded-For it likes
    await redis.flushdb()
    async with seen_from(apps[0], peer) as http:
        # when it logs in
        assert await login(http, unique_email(), headers) == "InvalidCredentials"
    # then it was counted under its socket address, and only there
    assert await counted_addresses(redis) == {address_key(canonical(peer) or peer)}


@EXAMPLES
@given(peer=peers, headers=forged_headers, appended=st.ip_addresses().map(str))
async def test_with_one_hop_the_address_is_the_right_most_entry(
    apps: dict[int, GraphQLClient], redis: aioredis.Redis, peer: str, headers: list[str], appended: str
) -> None:
    # given TRUSTED_PROXY_HOPS=1: a proxy appends the address it saw (sometimes as a header line of its own)
    await redis.flushdb()
    sent = [*headers[:-1], f"{headers[-1]}, {appended}"] if headers and len(appended) % 2 else [*headers, appended]
    async with seen_from(apps[1], peer) as http:
        assert await login(http, unique_email(), sent) == "InvalidCredentials"
    # then the right-most entry is the address, whatever the client wrote to its left
    assert expected_client(peer, sent, 1) == canonical(appended)
    assert await counted_addresses(redis) == {address_key(canonical(appended) or "")}


@EXAMPLES
@given(peer=peers, headers=forged_headers)
async def test_with_one_hop_a_garbage_right_most_entry_is_never_used(
    apps: dict[int, GraphQLClient], redis: aioredis.Redis, peer: str, headers: list[str]
) -> None:
    # given the header exactly as the client wrote it (no proxy in front, a misconfiguration)
    await redis.flushdb()
    async with seen_from(apps[1], peer) as http:
        assert await login(http, unique_email(), headers) == "InvalidCredentials"
    # then the right-most entry when it is an address, else the socket peer: never raw text
    assert await counted_addresses(redis) == {address_key(expected_client(peer, headers, 1))}


@settings(EXAMPLES, max_examples=25)
@given(hops=st.sampled_from([0, 1]), peer=peers, header=st.lists(entries, max_size=5).map(", ".join).map(str.strip))
async def test_websocket_connections_use_the_same_rule(
    apps: dict[int, GraphQLClient], redis: aioredis.Redis, hops: int, peer: str, header: str
) -> None:
    # given a WebSocket opened from `peer` with a forged X-Forwarded-For
    await redis.flushdb()
    client = apps[hops]
    headers = {"x-forwarded-for": header}
    async with AsgiWebSocket(client.app, headers=headers, client=(peer, 50000)) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {client.token}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        # when a login runs over it
        variables = {"email": unique_email(), "password": "wrong password 1"}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": LOGIN, "variables": variables}})
        message = await ws.receive_json()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["login"]["__typename"] == "InvalidCredentials"
    # then it was counted under the address the HTTP rule gives
    assert await counted_addresses(redis) == {address_key(expected_client(peer, [header], hops))}


# ---------------------------------------------------------------- throttles that hold


@pytest.fixture(scope="module")
async def throttled(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, postgres_url: str
) -> AsyncIterator[GraphQLClient]:
    """Behind one proxy (hops=1); login: 2 per address, 3 per account; register: 2 per e-mail; refresh: 3 per family."""
    async with app(
        tmp_path_factory.mktemp("throttled"),
        redis_url,
        postgres_url,
        trusted_proxy_hops=1,
        rate_limit_login=2,
        rate_limit_login_account=3,
        rate_limit_register_account=2,
        rate_limit_refresh_family=3,
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def throttled_attacker(throttled: GraphQLClient, redis_url: str) -> str:
    """An address whose login bucket is full (two attempts against two accounts)."""
    cleaner = aioredis.Redis.from_url(redis_url)
    await cleaner.flushdb()
    await cleaner.aclose()
    attacker = "198.51.100.66"
    async with seen_from(throttled, "10.0.0.2") as http:
        kinds = [await login(http, unique_email(), [attacker]) for _ in range(3)]
    assert kinds == ["InvalidCredentials", "InvalidCredentials", "RateLimited"]
    return attacker


@settings(EXAMPLES, max_examples=40)
@given(headers=forged_headers, peer=peers)
async def test_a_throttled_address_stays_throttled_whatever_it_forges(
    throttled: GraphQLClient, throttled_attacker: str, headers: list[str], peer: str
) -> None:
    # given an address that reached its login limit, behind the proxy that appends it
    sent = [*headers, throttled_attacker]
    async with seen_from(throttled, peer) as http:
        # when it tries again with any X-Forwarded-For of its own making, against a fresh account
        kind = await login(http, unique_email(), sent)
    # then it is still refused
    assert kind == "RateLimited"


@pytest.fixture(scope="module")
async def locked_account(throttled: GraphQLClient, throttled_attacker: str) -> str:
    """An account whose login bucket is full: three wrong passwords from three addresses."""
    email = unique_email()
    await register_user(throttled, email, PASSWORD)
    async with seen_from(throttled, "10.0.0.3") as http:
        kinds = [await login(http, email, [f"192.0.2.{n}"]) for n in range(3)]
    assert kinds == ["InvalidCredentials"] * 3
    return email


@settings(EXAMPLES, max_examples=40)
@given(headers=forged_headers, peer=peers, appended=st.ip_addresses().map(str), spelling=st.sampled_from([0, 1, 2]))
async def test_a_throttled_account_stays_throttled_whatever_header_is_sent(
    throttled: GraphQLClient, locked_account: str, headers: list[str], peer: str, appended: str, spelling: int
) -> None:
    # given the account is at its limit; the attacker rotates addresses, headers and spellings
    email = [locked_account, locked_account.upper(), f"  {locked_account} "][spelling]
    sent = [*headers, appended]
    async with seen_from(throttled, peer) as http:
        # when it tries, even with the right password
        kind = await login(http, email, sent, password=PASSWORD)
    # then the account's limit refuses it
    assert kind == "RateLimited"


async def test_the_per_account_login_limit_holds_across_many_addresses(throttled: GraphQLClient) -> None:
    # given an account and an attacker with a new address for every attempt (one each: never the per-address limit)
    victim = unique_email()
    await register_user(throttled, victim, PASSWORD)
    bystander = unique_email()
    await register_user(throttled, bystander, PASSWORD)
    async with seen_from(throttled, "10.0.0.4") as http:
        # when it makes four attempts from four addresses
        kinds = [await login(http, victim, [f"203.0.113.{n}"]) for n in range(1, 5)]
        # then the fourth is refused, and so is the owner's own right password
        owner = await login(http, victim, ["203.0.113.200"], password=PASSWORD)
        # while another account is not affected
        other = await login(http, bystander, ["203.0.113.201"], password=PASSWORD)
    assert kinds == ["InvalidCredentials"] * 3 + ["RateLimited"]
    assert owner == "RateLimited"
    assert other == "AuthPayload"


async def test_register_is_limited_per_e_mail_across_addresses(throttled: GraphQLClient, redis: aioredis.Redis) -> None:
    # given one e-mail, spelled differently, registered from a new address each time
    email = unique_email()
    spellings = [email, email.upper(), f" {email}", email.title()]
    kinds = []
    async with seen_from(throttled, "10.0.0.5") as http:
        for n, spelling in enumerate(spellings):
            response = await http.post(
                "/graphql", json={"query": REGISTER, "variables": {"email": spelling}}, headers=xff([f"192.0.2.{n}"])
            )
            kinds.append(response.json()["data"]["register"]["__typename"])
    # then the e-mail's limit (2) holds: taken once, refused from then on
    assert kinds == ["AuthPayload", "EmailTaken", "RateLimited", "RateLimited"]
    # and no key holds the e-mail: accounts are keyed by a digest
    keys = [key.decode() for key in await redis.keys("rl:*")]
    assert any(key.startswith("rl:register:account:") for key in keys)
    assert not [key for key in keys if email.split("@")[0] in key.lower()]


async def test_refresh_is_limited_per_token_family_across_addresses(throttled: GraphQLClient) -> None:
    # given one sign-in, rotated from a new address each time
    session = await register_user(throttled, unique_email(), PASSWORD)
    token = session["refreshToken"]
    kinds = []
    async with seen_from(throttled, "10.0.0.6") as http:
        for n in range(4):
            response = await http.post(
                "/graphql", json={"query": REFRESH, "variables": {"token": token}}, headers=xff([f"198.18.0.{n}"])
            )
            result = response.json()["data"]["refreshToken"]
            kinds.append(result["__typename"])
            token = result.get("refreshToken") or token
        # then the family's limit (3) holds; another sign-in's family is not affected
        fresh = await register_user(throttled, unique_email(), PASSWORD)
        response = await http.post(
            "/graphql",
            json={"query": REFRESH, "variables": {"token": fresh["refreshToken"]}},
            headers=xff(["198.18.1.1"]),
        )
    assert kinds == ["AuthPayload"] * 3 + ["RateLimited"]
    assert response.json()["data"]["refreshToken"]["__typename"] == "AuthPayload"
    # and the refused call spent nothing: its token is still unused, good once the window passes
    async with throttled.container.uow() as uow:
        record = await uow.refresh_tokens.get_by_hash(refresh_token_hash(token))
    assert record is not None and record.used_at is None and record.revoked_at is None
