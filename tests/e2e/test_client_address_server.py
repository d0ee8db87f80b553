"""Security #15, point 8, through `genhub serve` (uvicorn) over real sockets: HTTP and WebSocket.

uvicorn's own proxy-header handling once made the left-most, client-written X-Forwarded-For
entry the client address; here the real process, with its real uvicorn configuration, must
count every request under the address TRUSTED_PROXY_HOPS gives, whatever the header says.
The address used is read back from the Redis bucket the server counted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.throttle import address_key
from tests.e2e.subscription_support import Server, TransportWs, base_env, start_server
from tests.integration.forwarded_for import (
    LOGIN,
    PASSWORD,
    counted_addresses,
    entries,
    expected_client,
    forged_headers,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PEER = "127.0.0.1"  # the test's own socket address, as the server sees it
OVER_SOCKETS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
async def servers(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> AsyncIterator[dict[int, Server]]:
    """`genhub serve` with TRUSTED_PROXY_HOPS 0, 1 and 2, on PostgreSQL and Redis, no limit in the way."""
    tmp = tmp_path_factory.mktemp("client-address-server")
    started: dict[int, Server] = {}
    try:
        for hops in (0, 1, 2):
            env = base_env(
                DATABASE_URL=postgres_url,
                REDIS_URL=redis_url,
                TRUSTED_PROXY_HOPS=str(hops),
                RATE_LIMIT_LOGIN_ACCOUNT="1000000",
                RATE_LIMIT_REGISTER_ACCOUNT="1000000",
            )
            cwd = tmp / f"hops{hops}"
            cwd.mkdir()
            started[hops] = await start_server(env, cwd, name=f"serve-hops{hops}")
        yield started
    finally:
        for server in started.values():
            await server.proc.stop()


async def login_over_http(server: Server, headers: Sequence[str]) -> str:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        variables = {"email": f"u{uuid.uuid4().hex}@example.com", "password": "wrong password 1"}
        response = await http.post(
            "/graphql",
            json={"query": LOGIN, "variables": variables},
            headers=[("x-forwarded-for", value) for value in headers],
        )
    assert response.status_code == 200, response.text
    kind: str = response.json()["data"]["login"]["__typename"]
    return kind


@OVER_SOCKETS
@given(hops=st.sampled_from([0, 1, 2]), headers=forged_headers)
async def test_over_http_the_server_counts_the_address_the_rule_gives(
    servers: dict[int, Server], redis: aioredis.Redis, hops: int, headers: list[str]
) -> None:
    # given a real server and a client sending any X-Forwarded-For lines (none, one or several)
    await redis.flushdb()
    # when it logs in over a real socket
    assert await login_over_http(servers[hops], headers) == "InvalidCredentials"
    # then hops=0 counts the socket peer whatever was sent; hops=N the N-th entry from the right
    # when it is an address, else the peer
    expected = expected_client(PEER, headers, hops)
    if hops == 0:
        assert expected == PEER
    assert await counted_addresses(redis) == {address_key(expected)}


@OVER_SOCKETS
@given(forged=forged_headers, appended=st.ip_addresses().map(str))
async def test_over_http_with_one_hop_the_right_most_entry_wins(
    servers: dict[int, Server], redis: aioredis.Redis, forged: list[str], appended: str
) -> None:
    # given a proxy that appended the address it saw after whatever the client forged
    await redis.flushdb()
    assert await login_over_http(servers[1], [*forged, appended]) == "InvalidCredentials"
    # then that appended address is the one counted
    assert await counted_addresses(redis) == {address_key(expected_client(PEER, [appended], 1))}


@pytest.fixture(scope="module")
async def token(servers: dict[int, Server]) -> str:
    """An access token: WebSocket connections must sign in at connection_init."""
    register = """mutation ($e: String!, $p: String!) {
      register(input: {email: $e, password: $p}) { ... on AuthPayload { accessToken } } }"""
    async with httpx.AsyncClient(base_url=servers[0].http_url, timeout=10) as http:
        variables = {"e": f"ws{uuid.uuid4().hex}@example.com", "p": PASSWORD}
        response = await http.post("/graphql", json={"query": register, "variables": variables})
    access: str = response.json()["data"]["register"]["accessToken"]
    return access


@settings(OVER_SOCKETS, max_examples=15)
@given(
    hops=st.sampled_from([0, 1]),
    header=st.lists(entries, min_size=1, max_size=5).map(", ".join).map(str.strip).filter(bool),
)
async def test_over_websocket_the_server_counts_the_address_the_rule_gives(
    servers: dict[int, Server], token: str, redis: aioredis.Redis, hops: int, header: str
) -> None:
    # given a WebSocket upgrade carrying a forged X-Forwarded-For
    await redis.flushdb()
    client = await TransportWs.connect(
        servers[hops].ws_url, payload={"Authorization": f"Bearer {token}"}, headers={"X-Forwarded-For": header}
    )
    try:
        # when a login runs over the connection
        variables = {"email": f"u{uuid.uuid4().hex}@example.com", "password": "wrong password 1"}
        op = await client.subscribe(LOGIN, variables)
        data = await client.next_data(op)
    finally:
        await client.close()
    assert data["login"]["__typename"] == "InvalidCredentials"
    # then it is counted exactly as an HTTP request with that header would be
    assert await counted_addresses(redis) == {address_key(expected_client(PEER, [header], hops))}
